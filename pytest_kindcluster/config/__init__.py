"""kind's ``kind.x-k8s.io/v1alpha4`` Cluster configuration: load, validate, default, patch.

::

    config = load_config("kind.yaml")     # ConfigError lists every problem at once
    config.nodes[0].role                  # "control-plane"

The loader is strict in kind's way (unknown keys are errors) and names each field that kind
accepts but this plugin does not support yet.
"""

from pytest_kindcluster.config.load import load_config, parse_config
from pytest_kindcluster.config.model import (
    ClusterConfig,
    Mount,
    Networking,
    NodeConfig,
    PatchJSON6902,
    PortMapping,
    default_config,
)

__all__ = [
    "ClusterConfig",
    "Mount",
    "Networking",
    "NodeConfig",
    "PatchJSON6902",
    "PortMapping",
    "default_config",
    "load_config",
    "parse_config",
]
