"""kind's extraMounts and extraPortMappings as Docker SDK arguments.

See docs/node-contract.md#ports-and-mounts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
from docker.types import Mount

from pytest_kindcluster.runtime.base import NodeSpec

# kind's propagation names -> Linux's (and Docker's).
_PROPAGATION = {"None": "rprivate", "HostToContainer": "rslave", "Bidirectional": "rshared"}


# Host paths kind binds into every node, read-only, so that the node can load kernel modules
# (kind: pkg/cluster/internal/providers/docker/provision.go). A kernel with everything built in
# may leave the host without /lib/modules at all, and the Engine API refuses a missing bind source
# (the CLI's `-v` would create it), so each is bound only where the engine's host has it.
OPTIONAL_HOST_PATHS = ("/lib/modules",)


def host_mounts(host_root: Path | None) -> list[Mount]:
    """Read-only binds of the optional host paths that exist below ``host_root``.

    ``host_root`` is where the engine's host file system is visible to us: ``/`` for a local
    engine, None for a remote one, whose paths we cannot see; it then gets none of them, since a
    missing one would fail every node and the nodes run without them.
    """
    if host_root is None:
        return []
    return [
        Mount(path, path, type="bind", read_only=True)
        for path in OPTIONAL_HOST_PATHS
        if (host_root / path.lstrip("/")).is_dir()
    ]


def extra_mounts(spec: NodeSpec) -> list[Mount]:
    """Bind mounts of host paths into the node."""
    return [
        Mount(
            m.container_path,
            str(m.host_path),
            type="bind",
            read_only=m.read_only,
            propagation=_PROPAGATION[m.propagation],
        )
        for m in spec.mounts
    ]


def extra_ports(spec: NodeSpec) -> dict[str, list[tuple[str, int]]]:
    """``containerPort/proto`` -> [(listen address, host port)]; port 0 lets Docker choose.

    A list, because kind allows one container port to be published on several host ports.
    """
    ports: dict[str, list[tuple[str, int]]] = {}
    for p in spec.ports:
        ports.setdefault(f"{p.container_port}/{p.protocol.lower()}", []).append(
            (p.listen_address, p.host_port)
        )
    return ports


def run_load_balancer(
    client: docker.DockerClient, spec: NodeSpec, labels: dict[str, str], ports: dict[str, Any]
) -> None:
    """The HA load balancer: an unprivileged haproxy container, as kind runs its envoy."""
    container = client.containers.create(
        spec.image,
        name=spec.name,
        hostname=spec.name,
        labels=labels,
        network=spec.network,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 1},
        tty=True,
        ports=ports,
    )
    container.start()
