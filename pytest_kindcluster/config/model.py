"""kind's ``kind.x-k8s.io/v1alpha4`` Cluster, as frozen dataclasses with defaults applied.

Field names are the Python spelling of kind's YAML keys (``extraPortMappings`` ->
``extra_port_mappings``). Everything here has already passed validation: code that receives a
:class:`ClusterConfig` never re-checks it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

Role = Literal["control-plane", "worker"]
Protocol = Literal["TCP", "UDP", "SCTP"]
Propagation = Literal["None", "HostToContainer", "Bidirectional"]
KubeProxyMode = Literal["iptables", "nftables", "none"]

API_VERSION = "kind.x-k8s.io/v1alpha4"
KIND = "Cluster"
DEFAULT_POD_SUBNET = "10.244.0.0/16"
DEFAULT_SERVICE_SUBNET = "10.96.0.0/16"
DEFAULT_API_SERVER_ADDRESS = "127.0.0.1"
# Extra ports are published on loopback unless the file says otherwise: kind's default
# (every interface) would expose a test cluster's services to the whole network.
DEFAULT_LISTEN_ADDRESS = "127.0.0.1"


def frozen_map(values: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """A read-only copy, so a frozen config cannot be changed through its mappings."""
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class Mount:
    """``nodes[].extraMounts[]``: a host path bind-mounted into the node container."""

    host_path: Path
    container_path: str
    read_only: bool = False
    propagation: Propagation = "None"


@dataclass(frozen=True)
class PortMapping:
    """``nodes[].extraPortMappings[]``; ``host_port`` 0 lets the engine pick a free port."""

    container_port: int
    host_port: int = 0
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    protocol: Protocol = "TCP"


@dataclass(frozen=True)
class PatchJSON6902:
    """An RFC 6902 patch for the kubeadm document of this kind (and group/version, if set)."""

    kind: str
    patch: str
    group: str = ""
    version: str = ""

    @property
    def api_version(self) -> str:
        """``group/version``; ``group/`` (any version) or ``version`` when a part is empty."""
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True)
class NodeConfig:
    """``nodes[]``. ``image`` None means the session's node image (``--kind-image``)."""

    role: Role = "control-plane"
    image: str | None = None
    labels: Mapping[str, str] = field(default_factory=frozen_map)
    extra_mounts: tuple[Mount, ...] = ()
    extra_port_mappings: tuple[PortMapping, ...] = ()
    kubeadm_config_patches: tuple[str, ...] = ()
    kubeadm_config_patches_json6902: tuple[PatchJSON6902, ...] = ()


@dataclass(frozen=True)
class Networking:
    """``networking``. ``api_server_port`` 0 lets the engine pick a free port."""

    api_server_address: str = DEFAULT_API_SERVER_ADDRESS
    api_server_port: int = 0
    pod_subnet: str = DEFAULT_POD_SUBNET
    service_subnet: str = DEFAULT_SERVICE_SUBNET
    disable_default_cni: bool = False
    kube_proxy_mode: KubeProxyMode = "iptables"
    ip_family: Literal["ipv4"] = "ipv4"


@dataclass(frozen=True)
class ClusterConfig:
    """A whole cluster configuration; :func:`default_config` is one control-plane node."""

    nodes: tuple[NodeConfig, ...] = (NodeConfig(),)
    networking: Networking = Networking()
    name: str | None = None
    feature_gates: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))
    runtime_config: Mapping[str, str] = field(default_factory=frozen_map)
    kubeadm_config_patches: tuple[str, ...] = ()
    kubeadm_config_patches_json6902: tuple[PatchJSON6902, ...] = ()
    containerd_config_patches: tuple[str, ...] = ()
    containerd_config_patches_json6902: tuple[str, ...] = ()
    #: The file it was loaded from, if any (for messages; not part of the cluster's identity).
    source: Path | None = field(default=None, compare=False, repr=False)

    @property
    def control_planes(self) -> tuple[NodeConfig, ...]:
        """Control-plane nodes, in file order."""
        return tuple(n for n in self.nodes if n.role == "control-plane")

    @property
    def workers(self) -> tuple[NodeConfig, ...]:
        """Worker nodes, in file order."""
        return tuple(n for n in self.nodes if n.role == "worker")

    @property
    def high_availability(self) -> bool:
        """More than one control plane: kind then puts a load balancer in front of them."""
        return len(self.control_planes) > 1

    def node_names(self, cluster: str) -> list[tuple[str, NodeConfig]]:
        """kind's node names in file order: ``<cluster>-control-plane``, ``-control-plane2``..."""
        counts: dict[str, int] = {}
        named = []
        for node in self.nodes:
            counts[node.role] = counts.get(node.role, 0) + 1
            suffix = str(counts[node.role]) if counts[node.role] > 1 else ""
            named.append((f"{cluster}-{node.role}{suffix}", node))
        return named


def default_config() -> ClusterConfig:
    """kind's defaults: one control-plane node with the session's image."""
    return ClusterConfig()
