"""pytest-kindcluster: real, ephemeral Kubernetes clusters for pytest, through the Docker API.

The pytest plugin (fixtures ``kind_cluster``, ``kind_client``, ``kind_namespace``) is loaded by
the ``pytest11`` entry point. :class:`KindCluster` also works on its own, as a context manager.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from pytest_kindcluster.errors import (
    BuildError,
    ClusterUnreachable,
    CommandFailed,
    ConfigError,
    EngineError,
    ExistingClusterError,
    ImageError,
    KindClusterError,
    ProvisionError,
    ReadinessTimeout,
    RuntimeUnavailable,
)

if TYPE_CHECKING:
    from pytest_kindcluster.cluster.existing import ExistingCluster
    from pytest_kindcluster.cluster.lifecycle import KindCluster

# pytest imports this package in every session (the plugin's entry point lives in it), and the
# cluster lifecycle brings the Kubernetes client (about half a second): it is loaded on first
# use of the name instead (PEP 562).
_LAZY = {
    "KindCluster": "pytest_kindcluster.cluster.lifecycle",
    "ExistingCluster": "pytest_kindcluster.cluster.existing",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups do not come here again
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


try:
    __version__ = version("pytest-kindcluster")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_NODE_IMAGE",
    "BuildError",
    "ClusterUnreachable",
    "CommandFailed",
    "ConfigError",
    "EngineError",
    "ExistingCluster",
    "ExistingClusterError",
    "ImageError",
    "KindCluster",
    "KindClusterError",
    "ProvisionError",
    "ReadinessTimeout",
    "RuntimeUnavailable",
    "__version__",
]
