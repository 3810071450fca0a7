"""Checks on a cluster config: single values (used while decoding) and the whole (afterwards).

Every check returns a message instead of raising, so the loader can collect every problem of a
file and report them together.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping

from pytest_kindcluster.config.model import ClusterConfig, NodeConfig
from pytest_kindcluster.errors import ConfigError

# Node names append "-control-plane2" etc. and must stay 63-character DNS labels; the same rule
# as --kind-name.
_CLUSTER_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,47}[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_FEATURE_GATE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
# kubelet refuses to start with --node-labels in these namespaces, except the ones below
# (NodeRestriction; kubernetes/kubernetes#84912).
_RESTRICTED = ("kubernetes.io", "k8s.io")
_ALLOWED_PREFIXES = ("kubelet.kubernetes.io", "node.kubernetes.io")
_ALLOWED_KEYS = (
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
)


# Cluster names become container, host and node names: lowercase DNS labels, short enough for
# "<name>-control-plane2" to stay one.
_CLUSTER_NAME_RULE = (
    "use 1-49 lowercase letters, digits or '-', starting and ending with a letter or digit"
)


def check_cluster_name(name: str) -> str | None:
    """The problem with ``name`` as a cluster name (for a config's problem list), or None."""
    if _CLUSTER_NAME.match(name):
        return None
    return f"{name!r} is not a valid cluster name: {_CLUSTER_NAME_RULE}"


def validate_cluster_name(name: str) -> str:
    """``name`` if it is a valid cluster name, else ConfigError (for options and arguments)."""
    if not _CLUSTER_NAME.match(name):
        raise ConfigError(f"invalid cluster name {name!r}: {_CLUSTER_NAME_RULE}")
    return name


def validate_timeout(seconds: float) -> float:
    """``seconds`` if it is a usable budget, else ConfigError: nan, inf, 0 and less never are.

    nan compares false with everything, so a plain ``<= 0`` test lets it through to wait forever.
    """
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"must be a finite number of seconds greater than 0, not {seconds!r}")
    return seconds


def check_port(port: int, *, random_ok: bool) -> str | None:
    """1-65535; 0 and kind's -1 (both: let the engine choose) where a random port makes sense."""
    if random_ok and port in (0, -1):
        return None
    low = -1 if random_ok else 1
    if not low <= port <= 65535:
        allowed = "1-65535, or 0 for a free port" if random_ok else "1-65535"
        return f"{port} is not a valid port ({allowed})"
    return None


def check_ip(text: str) -> str | None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return f"{text!r} is not an IP address"
    return None


def check_ipv4_cidr(text: str) -> str | None:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return f"{text!r} is not a CIDR (like 10.244.0.0/16)"
    if network.version != 4:
        return f"{text!r} is an IPv6 CIDR; only ipFamily ipv4 is supported yet"
    return None


def check_label(key: str, value: str) -> str | None:
    """Kubernetes label syntax, and kubelet's rule on which labels a node may give itself."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"label key {key!r}: prefix {prefix!r} is not a DNS subdomain"
    if not _LABEL_NAME.match(name):
        return (
            f"label key {key!r}: the name must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    if value and not _LABEL_NAME.match(value):
        return (
            f"label {key}={value!r}: values are at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    restricted = any(prefix == ns or prefix.endswith("." + ns) for ns in _RESTRICTED)
    allowed = key in _ALLOWED_KEYS or any(
        prefix == p or prefix.endswith("." + p) for p in _ALLOWED_PREFIXES
    )
    if restricted and not allowed:
        return (
            f"label {key!r}: kubelet refuses to set labels in the kubernetes.io and k8s.io "
            "namespaces on its own node (use node-role.example.com/... or node.kubernetes.io/...)"
        )
    return None


def check_feature_gate(name: str) -> str | None:
    if _FEATURE_GATE.match(name):
        return None
    return f"{name!r} is not a feature gate name (CamelCase letters and digits)"


def check_runtime_config(key: str, value: str) -> str | None:
    # The map becomes one --runtime-config=k=v,k=v flag, so ',' or '=' would change its meaning.
    for text, what in ((key, "key"), (value, "value")):
        if not text or "," in text or "=" in text or text.strip() != text:
            return f"runtimeConfig {what} {text!r} must be non-empty without ',', '=' or spaces"
    return None


def check_cluster(config: ClusterConfig) -> list[str]:
    """Problems that involve more than one field."""
    problems: list[str] = []
    if not config.control_planes:
        problems.append("nodes: there must be at least one control-plane node")
    for index, node in enumerate(config.nodes):
        problems += [f"nodes[{index}].{p}" for p in _duplicate_ports(node)]
    net = config.networking
    try:
        pods = ipaddress.ip_network(net.pod_subnet, strict=False)
        services = ipaddress.ip_network(net.service_subnet, strict=False)
    except ValueError:
        return problems  # already reported field by field
    if pods.overlaps(services):
        problems.append(
            f"networking: podSubnet {net.pod_subnet} and serviceSubnet {net.service_subnet} "
            "overlap; pods and Services need separate ranges"
        )
    return problems


def _duplicate_ports(node: NodeConfig) -> list[str]:
    """Two mappings that would bind the same host address, port and protocol."""
    seen: dict[tuple[int, str], list[str]] = {}
    problems = []
    for mapping in node.extra_port_mappings:
        if mapping.host_port in (0, -1):
            continue  # the engine picks a distinct free port for each
        address = ipaddress.ip_address(mapping.listen_address)
        wildcard = address.is_unspecified
        key = (mapping.host_port, mapping.protocol)
        bound = seen.setdefault(key, [])
        clash = mapping.listen_address in bound or (bound and (wildcard or "*" in bound))
        if clash:
            problems.append(
                f"extraPortMappings: {mapping.listen_address}:{mapping.host_port}/"
                f"{mapping.protocol} is mapped twice"
            )
        bound.append("*" if wildcard else mapping.listen_address)
    return problems


def describe(value: object) -> str:
    """How a wrong value is shown in messages: its YAML type and the value."""
    names: Mapping[type, str] = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "null",
    }
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{names.get(type(value), type(value).__name__)} ({text})"


def yaml_problem(exc: Exception) -> str:
    """A PyYAML error on one line: what is wrong and where (its default text spans five)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return str(problem)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
