"""What a kind cluster file changes in a node's kubeadm documents.

See docs/node-contract.md#kubeadm-configuration.

The base documents come from :mod:`kubeadm_config`; this layer adds the file's networking,
feature gates, runtime config and node labels where kind puts them, then applies the file's
kubeadmConfigPatches: the cluster's first, then the node's own. Pure data in, data out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_kindcluster.config import ClusterConfig, NodeConfig
from pytest_kindcluster.config.patches import apply_kubeadm_patches
from pytest_kindcluster.errors import ConfigError, PatchError


def _add_args(section: dict[str, Any], key: str, values: dict[str, str], v1beta4: bool) -> None:
    """Add flags to an ``extraArgs``-style field in either of kubeadm's two shapes."""
    if not values:
        return
    current = section.get(key)
    if v1beta4:
        args = [a for a in current or [] if a.get("name") not in values]
        section[key] = args + [{"name": k, "value": v} for k, v in values.items()]
    else:
        section[key] = {**(current or {}), **values}


def _gates(config: ClusterConfig) -> str:
    return ",".join(
        f"{name}={str(on).lower()}" for name, on in sorted(config.feature_gates.items())
    )


def customise(
    documents: Iterable[dict[str, Any]], config: ClusterConfig, node: NodeConfig
) -> list[dict[str, Any]]:
    """The documents with ``config`` (and this ``node``'s part of it) applied."""
    net = config.networking
    gates = {"feature-gates": _gates(config)} if config.feature_gates else {}
    out: list[dict[str, Any]] = []
    for original in documents:
        doc = dict(original)
        kind = doc.get("kind")
        v1beta4 = str(doc.get("apiVersion", "")).endswith("/v1beta4")
        if kind == "ClusterConfiguration":
            doc["networking"] = {"podSubnet": net.pod_subnet, "serviceSubnet": net.service_subnet}
            api = doc["apiServer"] = dict(doc.get("apiServer") or {})
            sans = list(api.get("certSANs") or [])
            api["certSANs"] = sans + [s for s in (net.api_server_address,) if s not in sans]
            runtime = ",".join(f"{k}={v}" for k, v in config.runtime_config.items())
            _add_args(
                api,
                "extraArgs",
                {**gates, **({"runtime-config": runtime} if runtime else {})},
                v1beta4,
            )
            for component in ("controllerManager", "scheduler"):
                section = doc[component] = dict(doc.get(component) or {})
                _add_args(section, "extraArgs", gates, v1beta4)
        elif kind in ("InitConfiguration", "JoinConfiguration"):
            registration = doc["nodeRegistration"] = dict(doc.get("nodeRegistration") or {})
            labels = ",".join(f"{k}={v}" for k, v in node.labels.items())
            _add_args(
                registration, "kubeletExtraArgs", {"node-labels": labels} if labels else {}, v1beta4
            )
            if kind == "InitConfiguration" and net.kube_proxy_mode == "none":
                doc["skipPhases"] = [*doc.get("skipPhases", []), "addon/kube-proxy"]
        elif kind == "KubeletConfiguration" and config.feature_gates:
            doc["featureGates"] = dict(config.feature_gates)
        elif kind == "KubeProxyConfiguration":
            if net.kube_proxy_mode == "none":
                continue  # no kube-proxy, no configuration for it
            doc["mode"] = net.kube_proxy_mode
            if config.feature_gates:
                doc["featureGates"] = dict(config.feature_gates)
            if net.kube_proxy_mode == "nftables":
                # kind's setting: conntrack's strict TCP window tracking drops packets of
                # long-lived connections in nested network namespaces.
                doc["conntrack"] = {**doc.get("conntrack", {}), "tcpBeLiberal": True}
                doc["nftables"] = {"minSyncPeriod": "1s"}
        out.append(doc)
    try:
        out = apply_kubeadm_patches(
            out, config.kubeadm_config_patches, config.kubeadm_config_patches_json6902
        )
        return apply_kubeadm_patches(
            out, node.kubeadm_config_patches, node.kubeadm_config_patches_json6902
        )
    except PatchError as exc:
        raise ConfigError(f"kubeadmConfigPatches: {exc}") from exc
