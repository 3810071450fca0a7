"""Render the kubeadm configuration for one node (docs/node-contract.md#kubeadm-configuration).

Pure functions of :class:`KubeadmParams`, so the rendering is unit-tested without Docker. The
documents are built as data and dumped with PyYAML rather than filled into a text template, so
quoting can never produce YAML that means something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from pytest_kindcluster.contract import API_SERVER_PORT
from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.runtime.base import Role

CRI_SOCKET = "unix:///run/containerd/containerd.sock"
DEFAULT_POD_SUBNET = "10.244.0.0/16"
DEFAULT_SERVICE_SUBNET = "10.96.0.0/16"
# kubeadm v1beta4 arrived in 1.31 but kind switches at 1.36; follow kind so configs match its.
V1BETA4_SINCE = (1, 36)
# Below this kubeadm wants v1beta2 and the cgroupfs driver; this package does not render those.
OLDEST_SUPPORTED = (1, 24)
# kubelet refuses cgroup v1 from 1.35 unless told otherwise (kubernetes/kubernetes#134298).
FAIL_CGROUP_V1_SINCE = (1, 35)
# kubeadm's --patches accepts the "corednsdeployment" target from this release on.
COREDNS_PATCH_SINCE = (1, 32)
PATCHES_DIR = "/kind/patches"
# CoreDNS's readiness probe runs every 10 s and its first try always fails (it is not listening
# yet), so a fresh cluster waits ~10 s for DNS after the pods start; probing every second
# makes CoreDNS available as soon as it serves. Nothing else about CoreDNS changes.
COREDNS_PATCH = """\
spec:
  template:
    spec:
      containers:
      - name: coredns
        readinessProbe:
          periodSeconds: 1
"""

# kube-controller-manager's client defaults (20 requests/s, burst 30) throttle its own start-up:
# with kubeadm's --use-service-account-credentials every controller first gets a ServiceAccount
# and a token, and on a 2-CPU host that held every controller, the DaemonSet controller that
# starts the CNI among them, for ~5.5 s after the lease (0.7 s with these values).
CONTROLLER_MANAGER_RATE = {"kube-api-qps": "200", "kube-api-burst": "400"}
# With a single control plane there is nothing to elect; with election on, the controller
# manager's and scheduler's first try comes before the apiserver answers and the next one
# 2 s later (--leader-elect-retry-period), on the path to the first DaemonSet pod.
NO_ELECTION = {"leader-elect": "false"}

# kubeadm makes some 16 keys on init (CAs, serving and client certificates, kubeconfigs). RSA-2048
# keys took ~0.9 s of kubeadm init on a 2-CPU host; P-256 keys take a few milliseconds. v1beta4
# (kubeadm 1.31+) can choose; every Kubernetes component accepts either.
ENCRYPTION_ALGORITHM = "ECDSA-P256"

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


def parse_version(text: str) -> tuple[int, int, int]:
    """``v1.37.2`` (as in the image's /kind/version) -> (1, 37, 2)."""
    match = _VERSION.match(text.strip())
    if not match:
        raise ConfigError(f"cannot read a Kubernetes version from {text.strip()!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


@dataclass(frozen=True)
class KubeadmParams:
    """What one node's kubeadm configuration depends on."""

    cluster: str
    kubernetes_version: str
    node_name: str
    node_ip: str
    role: Role
    bootstrap: bool  # the control plane that runs `kubeadm init`
    token: str
    cgroup_v1: bool = False
    api_server_address: str = "127.0.0.1"
    pod_subnet: str = DEFAULT_POD_SUBNET
    service_subnet: str = DEFAULT_SERVICE_SUBNET
    kube_proxy_mode: str = "iptables"
    # The HA load balancer's host:port; empty for the sole control plane's.
    endpoint: str = ""
    control_planes: int = 1

    @property
    def control_plane_endpoint(self) -> str:
        """Nodes reach the apiserver by the control plane's (or load balancer's) name."""
        return self.endpoint or f"{self.cluster}-control-plane:{API_SERVER_PORT}"


def kubeadm_api_version(kubernetes_version: str) -> str:
    """The kubeadm config API to use for a Kubernetes version."""
    version = parse_version(kubernetes_version)[:2]
    if version < OLDEST_SUPPORTED:
        raise ConfigError(
            f"Kubernetes {kubernetes_version} is older than "
            f"{'.'.join(map(str, OLDEST_SUPPORTED))}, the oldest this plugin renders configs for"
        )
    return "kubeadm.k8s.io/v1beta4" if version >= V1BETA4_SINCE else "kubeadm.k8s.io/v1beta3"


def _args(api_version: str, values: dict[str, str]) -> Any:
    # v1beta4 turned extraArgs maps into ordered name/value lists, so flags may repeat.
    if api_version.endswith("v1beta4"):
        return [{"name": name, "value": value} for name, value in values.items()]
    return dict(values)


def _node_registration(params: KubeadmParams, api_version: str) -> dict[str, Any]:
    kubelet_args = {
        "node-ip": params.node_ip,
        "provider-id": f"kind://docker/{params.cluster}/{params.node_name}",
    }
    return {"criSocket": CRI_SOCKET, "kubeletExtraArgs": _args(api_version, kubelet_args)}


def _cluster_configuration(params: KubeadmParams, api_version: str) -> dict[str, Any]:
    sole = NO_ELECTION if params.control_planes == 1 else {}
    manager = {"enable-hostpath-provisioner": "true", **CONTROLLER_MANAGER_RATE, **sole}
    doc: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": params.kubernetes_version,
        "clusterName": params.cluster,
        "controlPlaneEndpoint": params.control_plane_endpoint,
        # The kubeconfig we hand out points at 127.0.0.1, so the serving cert must name it.
        "apiServer": {"certSANs": ["localhost", params.api_server_address]},
        "controllerManager": {"extraArgs": _args(api_version, manager)},
        "scheduler": {"extraArgs": _args(api_version, sole)} if sole else {},
        "networking": {"podSubnet": params.pod_subnet, "serviceSubnet": params.service_subnet},
    }
    if api_version.endswith("v1beta4"):
        doc["encryptionAlgorithm"] = ENCRYPTION_ALGORITHM
    return doc


def patches_coredns(kubernetes_version: str) -> bool:
    """Whether this kubeadm can patch the CoreDNS Deployment (see COREDNS_PATCH)."""
    return parse_version(kubernetes_version)[:2] >= COREDNS_PATCH_SINCE


def _init_configuration(params: KubeadmParams, api_version: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": "InitConfiguration",
        "bootstrapTokens": [{"token": params.token}],
        "localAPIEndpoint": {"advertiseAddress": params.node_ip, "bindPort": API_SERVER_PORT},
        "nodeRegistration": _node_registration(params, api_version),
        # kubeadm's preflight checks fail inside containers (swap, kernel config, modules).
        # kubelet-finalize only points kubelet.conf at the rotating client certificate and then
        # restarts the kubelet, just as the first pods (the CNI's) reach it, which delayed them
        # by ~2.5 s. The kubelet keeps the client certificate kubeadm embedded (valid a year).
        "skipPhases": ["preflight", "kubelet-finalize"],
    }
    if patches_coredns(params.kubernetes_version):
        doc["patches"] = {"directory": PATCHES_DIR}
    return doc


def _join_configuration(params: KubeadmParams, api_version: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": api_version,
        "kind": "JoinConfiguration",
        "nodeRegistration": _node_registration(params, api_version),
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": params.control_plane_endpoint,
                "token": params.token,
                # Nodes sit on a private bridge with a per-cluster random token; kind does the same.
                "unsafeSkipCAVerification": True,
            }
        },
        "skipPhases": ["preflight"],
    }
    if params.role == "control-plane":
        doc["controlPlane"] = {
            "localAPIEndpoint": {"advertiseAddress": params.node_ip, "bindPort": API_SERVER_PORT}
        }
    return doc


def _kubelet_configuration(params: KubeadmParams) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        # The node image's entrypoint prepares this cgroup so pods stay inside the node's own.
        "cgroupRoot": "/kubelet",
        "failSwapOn": False,
        # Nodes share the host's disk: never evict or garbage-collect because the host is full.
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {
            "nodefs.available": "0%",
            "nodefs.inodesFree": "0%",
            "imagefs.available": "0%",
        },
    }
    if params.cgroup_v1 and parse_version(params.kubernetes_version)[:2] >= FAIL_CGROUP_V1_SINCE:
        # kind does not do this; without it kubelet >= 1.35 exits on cgroup v1 hosts.
        doc["failCgroupV1"] = False
    return doc


def _kube_proxy_configuration(params: KubeadmParams) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": params.kube_proxy_mode,
        "iptables": {"minSyncPeriod": "1s"},
        # nf_conntrack_max is read-only inside a node; 0 tells kube-proxy to leave it alone.
        "conntrack": {"maxPerCore": 0},
    }


def kubeadm_documents(params: KubeadmParams) -> list[dict[str, Any]]:
    """The documents for one node: init (bootstrap control plane) or join (everyone else)."""
    api_version = kubeadm_api_version(params.kubernetes_version)
    if params.bootstrap:
        return [
            _cluster_configuration(params, api_version),
            _init_configuration(params, api_version),
            _kubelet_configuration(params),
            _kube_proxy_configuration(params),
        ]
    # Joining nodes take the kubelet and kube-proxy settings from the cluster's ConfigMaps.
    return [_join_configuration(params, api_version)]


def render_kubeadm_config(params: KubeadmParams) -> str:
    """The YAML written to /kind/kubeadm.conf on that node."""
    return yaml.safe_dump_all(kubeadm_documents(params), sort_keys=False)
