"""Decoders for the fields of a kind Cluster: typed getters and one function per field group.

Each decoder records problems (with the field's path) and returns a usable value anyway, the
field's default when the value was wrong, so decoding goes on and every problem is reported.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pytest_kindcluster.config.containerd import parse_toml_patch
from pytest_kindcluster.config.json6902 import parse_json6902
from pytest_kindcluster.config.model import (
    DEFAULT_LISTEN_ADDRESS,
    Mount,
    Networking,
    PatchJSON6902,
    PortMapping,
    frozen_map,
)
from pytest_kindcluster.config.patches import parse_json6902_patch, parse_merge_patches
from pytest_kindcluster.config.validate import (
    check_feature_gate,
    check_ip,
    check_ipv4_cidr,
    check_label,
    check_port,
    check_runtime_config,
    describe,
)
from pytest_kindcluster.errors import PatchError

T = TypeVar("T")
_PROPAGATIONS = ("None", "HostToContainer", "Bidirectional")
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_PROXY_MODES = ("iptables", "nftables", "none")
_TYPE_NAMES: Mapping[type, str] = {str: "a string", int: "an integer", bool: "true or false"}


class Problems:
    """Problems found so far, each prefixed with the path of the field it concerns."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        """Record one problem at ``path`` (empty for the file as a whole)."""
        self.items.append(f"{path}: {message}" if path else message)


def check_keys(
    obj: Mapping[Any, Any],
    path: str,
    known: set[str],
    p: Problems,
    not_yet: Mapping[str, str] | None = None,
) -> None:
    """Report unknown keys (with a suggestion) and known-but-unsupported ones that are set."""
    for key in obj:
        if not isinstance(key, str):
            p.add(_join(path, repr(key)), "keys must be strings")
        elif not_yet and key in not_yet:
            if obj[key] not in (None, False, ""):
                p.add(_join(path, key), f"not supported yet by pytest-kindcluster ({not_yet[key]})")
        elif key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            p.add(_join(path, key), f"unknown field{hint}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def optional(obj: Mapping[str, Any], key: str, path: str, kind: type[T], p: Problems) -> T | None:
    """``obj[key]`` if present and of type ``kind`` (a bool is not an int), else None."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    p.add(_join(path, key), f"expected {_TYPE_NAMES[kind]}, got {describe(value)}")
    return None


def sequence(obj: Mapping[str, Any], key: str, path: str, p: Problems) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        p.add(_join(path, key), f"expected a list, got {describe(value)}")
        return []
    return value


def _map(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    p: Problems,
    *,
    value_type: type[Any],
    check: Callable[[str, Any], str | None],
) -> dict[str, Any]:
    raw = obj.get(key)
    if raw is None:
        return {}
    where = _join(path, key)
    if not isinstance(raw, dict):
        p.add(where, f"expected a mapping, got {describe(raw)}")
        return {}
    good: dict[str, Any] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not isinstance(v, value_type) or v is None:
            want = "true or false" if value_type is bool else "a string (quote it)"
            p.add(f"{where}[{k!r}]", f"expected {want}, got {describe(v)}")
        elif message := check(k, v):
            p.add(f"{where}[{k!r}]", message)
        else:
            good[k] = v
    return good


def labels(node: Mapping[str, Any], path: str, p: Problems) -> Mapping[str, str]:
    return frozen_map(_map(node, "labels", path, p, value_type=str, check=check_label))


def feature_gates(data: Mapping[str, Any], p: Problems) -> Mapping[str, bool]:
    gates = _map(
        data, "featureGates", "", p, value_type=bool, check=lambda k, _: check_feature_gate(k)
    )
    return MappingProxyType(gates)


def runtime_config(data: Mapping[str, Any], p: Problems) -> Mapping[str, str]:
    return frozen_map(
        _map(data, "runtimeConfig", "", p, value_type=str, check=check_runtime_config)
    )


def _strings(obj: Mapping[str, Any], key: str, path: str, p: Problems) -> Iterator[tuple[str, str]]:
    """Each string of a list with its path; lazily, so problems stay in file order."""
    for index, item in enumerate(sequence(obj, key, path, p)):
        where = f"{_join(path, key)}[{index}]"
        if isinstance(item, str):
            yield where, item
        else:
            p.add(where, f"expected a string (a `|` block), got {describe(item)}")


def kubeadm_patches(obj: Mapping[str, Any], path: str, p: Problems) -> tuple[str, ...]:
    good = []
    for where, text in _strings(obj, "kubeadmConfigPatches", path, p):
        try:
            parse_merge_patches(text)
        except PatchError as exc:
            p.add(where, str(exc))
        else:
            good.append(text)
    return tuple(good)


def kubeadm_json6902(obj: Mapping[str, Any], path: str, p: Problems) -> tuple[PatchJSON6902, ...]:
    good = []
    key = "kubeadmConfigPatchesJSON6902"
    for index, item in enumerate(sequence(obj, key, path, p)):
        where = f"{_join(path, key)}[{index}]"
        if not isinstance(item, dict):
            p.add(where, f"expected a mapping with kind and patch, got {describe(item)}")
            continue
        check_keys(item, where, {"group", "version", "kind", "patch"}, p)
        values = {
            k: optional(item, k, where, str, p) for k in ("group", "version", "kind", "patch")
        }
        kind, text = values["kind"], values["patch"]
        if not kind or text is None:
            p.add(where, "needs both `kind` (the document to patch) and `patch`")
            continue
        patch = PatchJSON6902(kind, text, values["group"] or "", values["version"] or "")
        try:
            parse_json6902_patch(patch)
        except PatchError as exc:
            p.add(f"{where}.patch", str(exc))
        else:
            good.append(patch)
    return tuple(good)


def _parsed_strings(
    data: Mapping[str, Any], key: str, parse: Callable[[str], object], p: Problems
) -> tuple[str, ...]:
    """The strings under ``key`` that ``parse`` accepts; each rejection is a problem."""
    good = []
    for where, text in _strings(data, key, "", p):
        try:
            parse(text)
        except PatchError as exc:
            p.add(where, str(exc))
        else:
            good.append(text)
    return tuple(good)


def containerd_patches(data: Mapping[str, Any], p: Problems) -> tuple[str, ...]:
    return _parsed_strings(data, "containerdConfigPatches", parse_toml_patch, p)


def containerd_json6902(data: Mapping[str, Any], p: Problems) -> tuple[str, ...]:
    return _parsed_strings(data, "containerdConfigPatchesJSON6902", parse_json6902, p)


def mounts(node: Mapping[str, Any], path: str, p: Problems, base_dir: Path) -> tuple[Mount, ...]:
    good = []
    known = {"hostPath", "containerPath", "readOnly", "propagation"}
    not_yet = {"selinuxRelabel": "SELinux relabelling of mounts"}
    for index, item in enumerate(sequence(node, "extraMounts", path, p)):
        where = f"{path}.extraMounts[{index}]"
        if not isinstance(item, dict):
            p.add(where, f"expected a mapping, got {describe(item)}")
            continue
        check_keys(item, where, known, p, not_yet)
        host = optional(item, "hostPath", where, str, p)
        container = optional(item, "containerPath", where, str, p)
        read_only = optional(item, "readOnly", where, bool, p) or False
        propagation = optional(item, "propagation", where, str, p) or "None"
        ok = True
        if not host:
            p.add(f"{where}.hostPath", "is required")
            ok = False
        elif not (base_dir / host).exists():
            p.add(f"{where}.hostPath", f"{base_dir / host} does not exist on the host")
            ok = False
        if not container or not container.startswith("/"):
            p.add(f"{where}.containerPath", f"must be an absolute path, got {container!r}")
            ok = False
        if propagation not in _PROPAGATIONS:
            p.add(f"{where}.propagation", f"must be one of {', '.join(_PROPAGATIONS)}")
            ok = False
        if ok and host and container:
            resolved = (base_dir / host).resolve()
            good.append(Mount(resolved, container, read_only, propagation))  # type: ignore[arg-type]
    return tuple(good)


def port_mappings(node: Mapping[str, Any], path: str, p: Problems) -> tuple[PortMapping, ...]:
    good = []
    known = {"containerPort", "hostPort", "listenAddress", "protocol"}
    for index, item in enumerate(sequence(node, "extraPortMappings", path, p)):
        where = f"{path}.extraPortMappings[{index}]"
        if not isinstance(item, dict):
            p.add(where, f"expected a mapping, got {describe(item)}")
            continue
        check_keys(item, where, known, p)
        problems_before = len(p.items)
        container = optional(item, "containerPort", where, int, p)
        host = optional(item, "hostPort", where, int, p) or 0
        listen = optional(item, "listenAddress", where, str, p) or DEFAULT_LISTEN_ADDRESS
        protocol = (optional(item, "protocol", where, str, p) or "TCP").upper()
        if container is None:
            if item.get("containerPort") is None:
                p.add(f"{where}.containerPort", "is required")
        elif message := check_port(container, random_ok=False):
            p.add(f"{where}.containerPort", message)
        if message := check_port(host, random_ok=True):
            p.add(f"{where}.hostPort", message)
        if message := check_ip(listen):
            p.add(f"{where}.listenAddress", message)
        if protocol not in _PROTOCOLS:
            p.add(f"{where}.protocol", f"must be one of {', '.join(_PROTOCOLS)}, got {protocol!r}")
        if container is not None and len(p.items) == problems_before:
            good.append(PortMapping(container, max(host, 0), listen, protocol))  # type: ignore[arg-type]
    return tuple(good)


def networking(raw: Mapping[str, Any], p: Problems) -> Networking:
    defaults = Networking()
    where = "networking"
    family = optional(raw, "ipFamily", where, str, p) or "ipv4"
    if family in ("ipv6", "dual"):
        p.add(f"{where}.ipFamily", f"{family!r} is not supported yet (only ipv4)")
    elif family != "ipv4":
        p.add(f"{where}.ipFamily", f"must be ipv4, ipv6 or dual, got {family!r}")
    address = optional(raw, "apiServerAddress", where, str, p) or defaults.api_server_address
    if message := check_ip(address):
        p.add(f"{where}.apiServerAddress", message)
    elif ":" in address:
        p.add(f"{where}.apiServerAddress", f"{address!r}: IPv6 is not supported yet")
    port = optional(raw, "apiServerPort", where, int, p) or 0
    if message := check_port(port, random_ok=True):
        p.add(f"{where}.apiServerPort", message)
    subnets = {}
    for key, default in (
        ("podSubnet", defaults.pod_subnet),
        ("serviceSubnet", defaults.service_subnet),
    ):
        value = optional(raw, key, where, str, p) or default
        message = check_ipv4_cidr(value) if "," not in value else "dual-stack is not supported yet"
        if message:
            p.add(f"{where}.{key}", message)
            value = default
        subnets[key] = value
    mode = optional(raw, "kubeProxyMode", where, str, p) or "iptables"
    if mode == "ipvs":
        p.add(
            f"{where}.kubeProxyMode",
            "'ipvs' is not supported (many CI kernels lack IPVS); use iptables or nftables",
        )
    elif mode not in _PROXY_MODES:
        p.add(f"{where}.kubeProxyMode", f"must be one of {', '.join(_PROXY_MODES)}, got {mode!r}")
    return Networking(
        api_server_address=address,
        api_server_port=max(port, 0) if check_port(port, random_ok=True) is None else 0,
        pod_subnet=subnets["podSubnet"],
        service_subnet=subnets["serviceSubnet"],
        disable_default_cni=optional(raw, "disableDefaultCNI", where, bool, p) or False,
        kube_proxy_mode=mode if mode in _PROXY_MODES else "iptables",  # type: ignore[arg-type]
    )
