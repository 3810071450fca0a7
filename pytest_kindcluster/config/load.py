"""Read kind's Cluster YAML strictly: every unknown key and bad value, reported at once.

Like kind's loader, ``kind`` and ``apiVersion`` are checked first (the rest of the file means
nothing under another schema). Then each field is decoded and checked; a problem is recorded
with the field's path (``nodes[1].extraPortMappings[0].hostPort``) and decoding goes on, so one
:class:`ConfigError` lists them all. Fields kind knows but this plugin cannot honour yet are named
as such, never silently ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from pytest_kindcluster.config import fields
from pytest_kindcluster.config.fields import Problems, check_keys
from pytest_kindcluster.config.model import (
    API_VERSION,
    KIND,
    ClusterConfig,
    Networking,
    NodeConfig,
)
from pytest_kindcluster.config.validate import (
    check_cluster,
    check_cluster_name,
    describe,
    yaml_problem,
)
from pytest_kindcluster.errors import ConfigError


class _StrictLoader(yaml.SafeLoader):
    """PyYAML keeps the last of duplicate keys silently; kind's strict decoder rejects them."""

    duplicates: list[str]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                self.duplicates.append(
                    f"line {key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _StrictLoader.construct_mapping,
)


def _read_yaml(text: str, where: str) -> Any:
    loader = _StrictLoader(text)
    loader.duplicates = []
    try:
        docs = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            docs.append(loader.get_data())
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"invalid kind cluster config {where}: not valid YAML: {yaml_problem(exc)}"
        ) from exc
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(
            f"invalid kind cluster config {where}:\n  - " + "\n  - ".join(loader.duplicates)
        )
    docs = [d for d in docs if d is not None]
    if len(docs) != 1:
        raise ConfigError(
            f"invalid kind cluster config {where}: expected one YAML document, found {len(docs)}"
        )
    return docs[0]


def load_config(path: str | os.PathLike[str]) -> ClusterConfig:
    """Load a kind cluster file; relative ``hostPath``s are taken from the file's directory."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read kind cluster config {file}: {exc}") from exc
    return parse_config(text, source=file, base_dir=file.resolve().parent)


def parse_config(
    text: str, *, source: Path | None = None, base_dir: Path | None = None
) -> ClusterConfig:
    """Parse and validate the YAML text of a kind ``Cluster``; raises one ConfigError."""
    where = str(source) if source else "<text>"
    data = _read_yaml(text, where)
    problems = Problems()
    config = _cluster(data, problems, base_dir or Path.cwd(), source)
    if config is not None:
        for message in check_cluster(config):
            problems.add("", message)
    if problems.items:
        count = len(problems.items)
        raise ConfigError(
            f"invalid kind cluster config {where} ({count} problem{'s' if count > 1 else ''}):"
            "\n  - " + "\n  - ".join(problems.items)
        )
    assert config is not None  # no problems means the whole file decoded
    return config


_TOP_KEYS = {
    "kind",
    "apiVersion",
    "name",
    "nodes",
    "networking",
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
}
_NODE_KEYS = {
    "role",
    "image",
    "labels",
    "extraMounts",
    "extraPortMappings",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
}
_NETWORKING_KEYS = {
    "ipFamily",
    "apiServerAddress",
    "apiServerPort",
    "podSubnet",
    "serviceSubnet",
    "disableDefaultCNI",
    "kubeProxyMode",
}
# Fields kind accepts that this plugin cannot honour yet, with the reason.
_NOT_YET_NODE = {"gpus": "GPU pass-through needs the NVIDIA container toolkit on the host"}
_NOT_YET_NETWORKING = {"dnsSearch": "nodes always inherit the host's DNS search domains"}


def _cluster(
    data: Any, problems: Problems, base_dir: Path, source: Path | None
) -> ClusterConfig | None:
    if not isinstance(data, dict):
        problems.add("", f"a kind cluster config is a mapping, got {describe(data)}")
        return None
    kind, api_version = data.get("kind"), data.get("apiVersion")
    if kind != KIND:
        problems.add("kind", f"must be {KIND!r}, got {kind!r}")
    if api_version != API_VERSION:
        hint = " (older kind versions; convert the file to v1alpha4)" if api_version else ""
        problems.add("apiVersion", f"must be {API_VERSION!r}, got {api_version!r}{hint}")
    if problems.items:
        return None  # another schema: the rest of the file cannot be read as this one
    check_keys(data, "", _TOP_KEYS, problems)
    name = fields.optional(data, "name", "", str, problems)
    if name is not None and (message := check_cluster_name(name)):
        problems.add("name", message)
    # Decoded in the order of kind's documentation, so messages read top to bottom.
    feature_gates = fields.feature_gates(data, problems)
    runtime_config = fields.runtime_config(data, problems)
    networking = _networking(data.get("networking"), problems)
    kubeadm_patches = fields.kubeadm_patches(data, "", problems)
    kubeadm_json6902 = fields.kubeadm_json6902(data, "", problems)
    containerd_patches = fields.containerd_patches(data, problems)
    containerd_json6902 = fields.containerd_json6902(data, problems)
    raw_nodes = fields.sequence(data, "nodes", "", problems)
    nodes = tuple(
        node
        for index, item in enumerate(raw_nodes)
        if (node := _node(item, f"nodes[{index}]", problems, base_dir)) is not None
    )
    return ClusterConfig(
        nodes=nodes if raw_nodes else ClusterConfig().nodes,
        networking=networking,
        name=name,
        feature_gates=feature_gates,
        runtime_config=runtime_config,
        kubeadm_config_patches=kubeadm_patches,
        kubeadm_config_patches_json6902=kubeadm_json6902,
        containerd_config_patches=containerd_patches,
        containerd_config_patches_json6902=containerd_json6902,
        source=source,
    )


def _node(item: Any, path: str, problems: Problems, base_dir: Path) -> NodeConfig | None:
    if not isinstance(item, dict):
        problems.add(path, f"a node is a mapping, got {describe(item)}")
        return None
    check_keys(item, path, _NODE_KEYS, problems, _NOT_YET_NODE)
    role = fields.optional(item, "role", path, str, problems) or "control-plane"
    if role not in ("control-plane", "worker"):
        problems.add(f"{path}.role", f"must be 'control-plane' or 'worker', got {role!r}")
        role = "worker"
    image = fields.optional(item, "image", path, str, problems)
    if image is not None and (not image or any(c.isspace() for c in image)):
        problems.add(f"{path}.image", f"{image!r} is not an image reference")
    return NodeConfig(
        role="control-plane" if role == "control-plane" else "worker",
        image=image,
        labels=fields.labels(item, path, problems),
        extra_mounts=fields.mounts(item, path, problems, base_dir),
        extra_port_mappings=fields.port_mappings(item, path, problems),
        kubeadm_config_patches=fields.kubeadm_patches(item, path, problems),
        kubeadm_config_patches_json6902=fields.kubeadm_json6902(item, path, problems),
    )


def _networking(raw: Any, problems: Problems) -> Networking:
    if raw is None:
        return Networking()
    if not isinstance(raw, dict):
        problems.add("networking", f"must be a mapping, got {describe(raw)}")
        return Networking()
    check_keys(raw, "networking", _NETWORKING_KEYS, problems, _NOT_YET_NETWORKING)
    return fields.networking(raw, problems)
