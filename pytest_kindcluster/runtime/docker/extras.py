"""kind's extraMounts and extraPortMappings as Docker SDK arguments (KIND_CONTRACT 2, step 4)."""

from __future__ import annotations

from typing import Any

import docker
from docker.types import Mount

from pytest_kindcluster.runtime.base import NodeSpec

# kind's propagation names -> Linux's (and Docker's).
_PROPAGATION = {"None": "rprivate", "HostToContainer": "rslave", "Bidirectional": "rshared"}


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
