"""``@pytest.mark.kind_cluster(config=..., name=...)``: a module or class gets its own cluster.

The marker turns into an indirect parametrization of ``kind_cluster`` (see the plugin's
``pytest_generate_tests``), so the session-scoped fixture keeps its scope, fixtures built on it
follow along, and pytest groups the tests of each cluster together. Each distinct cluster is
created once, on first use, and deleted at the end of the session with the default one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_kindcluster.config import ClusterConfig, default_config, load_config
from pytest_kindcluster.config.validate import check_cluster_name
from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.util.hashing import digest

MARKER = "kind_cluster"
MARKER_HELP = (
    "kind_cluster(config=None, name=None): give this module or class its own kind cluster. "
    "config: a kind cluster YAML path (relative to the test file) or a ClusterConfig; "
    "name: the cluster's name (default: derived from the run and the config)"
)


@dataclass(frozen=True)
class ClusterRequest:
    """Which cluster a marked module or class asked for."""

    name: str
    config: ClusterConfig
    #: where the request came from, for messages
    origin: str


def _signature(config: Any = None, name: str | None = None) -> tuple[Any, str | None]:
    """The marker's call signature; bad arguments fail as a TypeError naming them."""
    return config, name


def cluster_request(node: pytest.Item | Any, default_name: str) -> ClusterRequest | None:
    """The closest ``kind_cluster`` marker of a test (its class, then its module), resolved."""
    marker = node.get_closest_marker(MARKER)
    if marker is None:
        return None
    origin = str(getattr(node, "nodeid", node))
    try:
        raw_config, name = _signature(*marker.args, **marker.kwargs)
    except TypeError as exc:
        raise ConfigError(f"{origin}: @pytest.mark.{MARKER}: {exc}") from exc
    config = _config(raw_config, Path(str(node.path)).parent, origin)
    if name is None:
        name = config.name or f"{default_name}-{_identity(config)[:6]}"
    elif message := check_cluster_name(name):
        raise ConfigError(f"{origin}: @pytest.mark.{MARKER}(name=...): {message}")
    return ClusterRequest(name=name, config=config, origin=origin)


def _config(raw: Any, base: Path, origin: str) -> ClusterConfig:
    if raw is None:
        return default_config()
    if isinstance(raw, ClusterConfig):
        return raw
    if isinstance(raw, str | os.PathLike):
        path = Path(raw)
        try:
            return load_config(path if path.is_absolute() else base / path)
        except ConfigError as exc:
            raise ConfigError(f"{origin}: @pytest.mark.{MARKER}(config=...): {exc}") from exc
    raise ConfigError(
        f"{origin}: @pytest.mark.{MARKER}(config=...) takes a path or a ClusterConfig, "
        f"not {type(raw).__name__}"
    )


def _identity(config: ClusterConfig) -> str:
    """A short stable key of what the cluster is (not where the file was)."""
    return digest(repr(config))


class ClusterRegistry:
    """The marked clusters of a session, by name; one config per name."""

    def __init__(self) -> None:
        self.requests: dict[str, ClusterRequest] = {}

    def register(self, request: ClusterRequest) -> ClusterRequest:
        """Remember a request; the same name with another config is a usage error."""
        known = self.requests.get(request.name)
        if known is None:
            self.requests[request.name] = request
            return request
        if known.config != request.config:
            raise ConfigError(
                f"cluster name {request.name!r} is asked for with two different configs "
                f"({known.origin} and {request.origin}); give one of them another name"
            )
        return known


# The session's registry, set in pytest_configure; the fixtures read it to know whether marked
# clusters exist.
MARKED_REQUESTS = pytest.StashKey[ClusterRegistry]()
