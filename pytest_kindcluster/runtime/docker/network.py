"""The shared ``kind`` network, created the way kind creates it.

See docs/node-contract.md#the-kind-network (kind: pkg/cluster/internal/providers/docker/network.go).

Shared by every cluster, ours and kind's, and never removed, as kind never removes it: a
concurrent run may be between creating it and attaching its first node. It is created without
labels of ours, so no version of this package takes it for its own. Only a network made for one
cluster alone (labelled ``NETWORK_CLUSTER_LABEL``) is removed with that cluster.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from collections.abc import Mapping
from typing import Any

import docker
import docker.errors
from docker.types import IPAMConfig, IPAMPool

from pytest_kindcluster.contract import DEFAULT_NETWORK, NETWORK_CLUSTER_LABEL
from pytest_kindcluster.runtime.docker.errors import engine_errors
from pytest_kindcluster.util.waiting import wait_until


def ula_subnet(name: str, attempt: int) -> str:
    """A /64 in fc00::/8 derived from the network name, as kind picks its IPv6 subnet.

    Deterministic so that every process (and the kind CLI) proposes the same first subnet; the
    attempt number moves on to another one when the first overlaps an existing network.
    """
    seed = name.encode() + struct.pack("<i", attempt)
    digest = hashlib.sha1(seed, usedforsecurity=False).digest()
    prefix = bytes([0xFC]) + digest[1:8]
    return str(ipaddress.IPv6Network((int.from_bytes(prefix + bytes(8), "big"), 64)))


def ensure_network(
    client: docker.DockerClient, name: str, labels: Mapping[str, str] | None = None
) -> bool:
    """Create the bridge network if it is missing, the way kind creates it, with ``labels``.

    The shared network gets none; a network made for one cluster alone carries
    ``NETWORK_CLUSTER_LABEL``, which is what lets :func:`remove_network` remove it.
    """
    if find_network(client, name) is not None:
        return False
    options = bridge_options(client)
    subnets = (ula_subnet(name, attempt) for attempt in range(5))

    def attempt_create() -> bool | None:
        # None means "that subnet overlaps an existing network; try the next one".
        created = _create_network(client, name, options, next(subnets), labels or {})
        return True if created else None

    with engine_errors(f"create network {name!r}"):
        try:
            return wait_until(
                attempt_create, what=f"a free subnet for {name}", attempts=5, interval=0
            )
        except docker.errors.APIError as exc:
            # Another process created it between our look and our create.
            if exc.status_code == 409 or find_network(client, name) is not None:
                return False
            raise


def _create_network(
    client: docker.DockerClient,
    name: str,
    options: dict[str, str],
    subnet: str,
    labels: Mapping[str, str],
) -> bool:
    try:
        client.networks.create(
            name,
            driver="bridge",
            options=options,
            enable_ipv6=True,
            ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=subnet)]),
            labels=dict(labels),
        )
    except docker.errors.APIError as exc:
        text = str(exc.explanation or exc).lower()
        if "overlap" in text:
            return False  # try the next derived subnet, as kind does
        if "ipv6" not in text:
            raise
        # The engine cannot do IPv6 here: kind falls back to an IPv4-only network too.
        client.networks.create(name, driver="bridge", options=options, labels=dict(labels))
    return True


def find_network(client: docker.DockerClient, name: str) -> Any:
    # The name filter matches substrings; only an exact name counts.
    with engine_errors(f"list networks named {name!r}"):
        found = [n for n in client.networks.list(names=[name]) if n.name == name]
    return found[0] if found else None


def bridge_options(client: docker.DockerClient) -> dict[str, str]:
    """kind's options for a bridge network: masquerading, and the default bridge's MTU if set."""
    options = {"com.docker.network.bridge.enable_ip_masquerade": "true"}
    bridge = find_network(client, "bridge")
    mtu = bridge.attrs.get("Options", {}).get("com.docker.network.driver.mtu") if bridge else None
    if mtu:
        options["com.docker.network.driver.mtu"] = str(mtu)
    return options


def remove_network(client: docker.DockerClient, name: str) -> bool:
    """Remove a network made for one cluster alone once nothing uses it; never the shared one."""
    if name == DEFAULT_NETWORK:
        return False
    network = find_network(client, name)
    if network is None or not (network.attrs.get("Labels") or {}).get(NETWORK_CLUSTER_LABEL):
        return False
    with engine_errors(f"inspect network {name!r}"):
        network.reload()
    if network.attrs.get("Containers"):
        return False
    try:
        network.remove()
    except docker.errors.APIError:
        # Someone attached a container since we looked: then it is not ours to remove.
        return False
    return True
