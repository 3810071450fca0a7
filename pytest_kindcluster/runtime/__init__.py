"""Node runtimes: the only layer that talks to a container engine.

:mod:`.base` is the seam (the protocols and the node handle), :mod:`.docker` the one real engine,
:mod:`.fake` an in-memory one for tests. :func:`connect_engine` is the one way the layers above get
a real engine; it imports the Docker SDK only when called, so sessions without a cluster never
load it.
"""

from __future__ import annotations

from pytest_kindcluster.runtime.base import Engine


def connect_engine() -> Engine:
    """The Docker engine from ``DOCKER_HOST`` or the default socket (RuntimeUnavailable if none)."""
    from pytest_kindcluster.runtime.docker.runtime import DockerRuntime  # noqa: PLC0415 - lazy

    return DockerRuntime()
