"""The one translation of ``docker`` SDK and transport errors into the package's errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
import requests.exceptions

from pytest_kindcluster.errors import EngineError, ImageError, RuntimeUnavailable

# How the engine says a host port is taken (userland proxy, then the iptables-only driver).
PORT_TAKEN = ("address already in use", "port is already allocated")
PORT_HINT = (
    "a host port this cluster asks for is taken by another process: free it, or pick another "
    "hostPort / apiServerPort in the cluster config (0 lets Docker choose)"
)


@contextmanager
def engine_errors(operation: str) -> Iterator[None]:
    """Translate docker SDK and transport errors into ours, keeping the original as the cause."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise ImageError(f"{operation}: {exc.explanation or exc}") from exc
    except docker.errors.APIError as exc:
        message = str(exc.explanation or exc)
        if any(sign in message for sign in PORT_TAKEN):
            message += f" ({PORT_HINT})"
        raise EngineError(operation, message) from exc
    except docker.errors.DockerException as exc:
        raise EngineError(operation, str(exc)) from exc
    except requests.exceptions.HTTPError as exc:
        raise EngineError(operation, str(exc)) from exc
    except requests.exceptions.ConnectionError as exc:
        message = f"lost the Docker engine while trying to {operation}: {exc}"
        raise RuntimeUnavailable(message) from exc
    except requests.exceptions.RequestException as exc:  # a read timeout: the engine hangs
        raise EngineError(operation, f"{type(exc).__name__}: {exc}") from exc
