"""pytest-kindcluster: real, ephemeral Kubernetes clusters for pytest, through the Docker API.

The pytest plugin (fixtures ``kind_cluster``, ``kind_client``, ``kind_namespace``) is loaded by
the ``pytest11`` entry point. :class:`KindCluster` also works on its own, as a context manager.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from pytest_kindcluster.cluster.existing import ExistingCluster
from pytest_kindcluster.cluster.lifecycle import KindCluster
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
