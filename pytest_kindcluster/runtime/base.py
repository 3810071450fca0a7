"""The seam between provisioning and a container engine.

Provisioning sees a :class:`NodeRuntime` (a handful of engine operations) and :class:`Node`
handles. After the nodes exist, ``Node.exec`` is the only thing a step needs, as in kind's
``nodes.Node``. Cluster state lives in container labels, never in memory, so any process
(including the kind CLI) can find, inspect and delete a cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pytest_kindcluster.config.model import Mount, PortMapping
from pytest_kindcluster.errors import CommandFailed
from pytest_kindcluster.util.redact import printable, redact

log = logging.getLogger(__name__)

# kind's roles; the load balancer is a container of the cluster but not a Kubernetes node.
Role = Literal["control-plane", "worker", "external-load-balancer"]
ResourceKind = Literal["container", "volume"]


@dataclass(frozen=True)
class ExecResult:
    """What a command run in a node returned; raw bytes, since some commands emit archives."""

    argv: tuple[str, ...]
    exit_code: int
    raw_stdout: bytes
    raw_stderr: bytes = b""

    @property
    def stdout(self) -> str:
        """Standard output as text."""
        return self.raw_stdout.decode(errors="replace")

    @property
    def stderr(self) -> str:
        """Standard error as text."""
        return self.raw_stderr.decode(errors="replace")

    @property
    def output(self) -> str:
        """Both streams, stdout first: what a human needs to see when the command failed."""
        return self.stdout + self.stderr


@dataclass(frozen=True)
class RuntimeInfo:
    """Facts about the engine that change what we render (cgroup v1 needs failCgroupV1)."""

    name: str
    version: str
    api_version: str
    cgroup_version: int
    arch: str  # Go/OCI spelling: amd64, arm64


@dataclass(frozen=True)
class NodeSpec:
    """Everything needed to run one node container."""

    name: str
    cluster: str
    role: Role
    image: str
    network: str
    labels: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    # Only the control plane publishes the apiserver, and only on loopback.
    publish_api_server: bool = False
    # Where the apiserver is published: kind's apiServerAddress and apiServerPort (0: any).
    api_server: tuple[str, int] = ("127.0.0.1", 0)
    # kind's extraMounts and extraPortMappings of this node.
    mounts: tuple[Mount, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    # A node booted from a snapshot keeps the in-cluster name it had when captured: its
    # hostname, and a network alias so the other nodes still find it by that name.
    hostname: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeDetails:
    """A node container as the engine reports it now."""

    name: str
    role: Role
    state: str
    image: str
    ipv4: str
    labels: Mapping[str, str]
    # container port "6443/tcp" -> (host ip, host port), only for published ports
    ports: Mapping[str, tuple[str, int]]
    # The engine's whole answer (``docker inspect``), for exported logs and post-mortems.
    inspect: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Resource:
    """A labelled container or volume, as the engine lists it."""

    kind: ResourceKind
    name: str
    labels: Mapping[str, str]


class LabelledResources(Protocol):
    """Listing and removing by label: what reaping the leftovers of crashed runs needs."""

    def labelled(self, label: str) -> list[Resource]:
        """Every container, then every volume, carrying ``label`` (``key`` or ``key=value``)."""
        ...

    def remove(self, resource: Resource) -> bool:
        """Force-remove a container (with its volumes) or an unused volume; False if refused."""
        ...


class NodeRuntime(Protocol):
    """The engine operations provisioning needs; one implementation per engine."""

    def info(self) -> RuntimeInfo:
        """Describe the engine (version, cgroup version, architecture)."""
        ...

    def ensure_network(self, name: str, labels: Mapping[str, str] | None = None) -> bool:
        """Make sure the network exists; True when this call created it (with ``labels``)."""
        ...

    def remove_network(self, name: str) -> bool:
        """Remove a network made for one cluster alone (``NETWORK_CLUSTER_LABEL``) once unused.

        Never the shared ``kind`` network, nor any network without that label: kind never
        removes its network, and a concurrent run may be about to attach to it. True if removed.
        """
        ...

    def run_node(self, spec: NodeSpec) -> Node:
        """Create and start one node container."""
        ...

    def list_nodes(self, cluster: str) -> list[Node]:
        """Every node container carrying the cluster's label, sorted by name."""
        ...

    def inspect_node(self, name: str) -> NodeDetails:
        """The current state of one node container."""
        ...

    def remove_nodes(self, names: Sequence[str]) -> None:
        """Force-remove node containers together with their anonymous volumes."""
        ...

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        stdin: bytes | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """Run a command in a node, privileged, feeding ``stdin`` (bytes or a file) if given."""
        ...

    def logs(self, node: str, *, tail: int | None = None) -> str:
        """The node container's console output (systemd's boot messages), or its last lines."""
        ...

    def resources(self) -> LabelledResources:
        """Every labelled container and volume of the engine, for reaping crashed runs."""
        ...


class HostImages(Protocol):
    """Host-side images, for loading them into nodes."""

    def image_id(self, ref: str) -> str | None:
        """The image's ID, or None if the engine does not have it."""
        ...

    def pull_image(self, ref: str) -> None:
        """Pull ``ref`` from its registry; raise ImageError (with the engine's reason) if not."""
        ...

    def copy_from_image(self, ref: str, path: str, dest: Path) -> bool:
        """Copy the file ``path`` of image ``ref`` to ``dest``, running nothing from the image.

        False when the image has no such file. The image must be present (no pull).
        """
        ...

    def export_image(self, ref: str, dest: Path, platform: str) -> None:
        """Write a single-platform image archive of ``ref`` to ``dest``."""
        ...


@dataclass(frozen=True)
class SnapshotImage:
    """One node's image of a snapshot, as the engine lists it."""

    ref: str
    image_id: str
    labels: Mapping[str, str]
    # Bytes this image adds on top of the node image it was made from.
    size: int


@dataclass(frozen=True)
class NetworkInfo:
    """A labelled network and how many containers are attached to it."""

    name: str
    labels: Mapping[str, str]
    containers: int


class SnapshotStore(Protocol):
    """What capturing a cluster into images, and booting clones of it, needs from an engine."""

    def stop_node(self, name: str, *, timeout: float) -> None:
        """Stop a node container cleanly (its image's stop signal lets systemd shut down)."""
        ...

    def capture_node(
        self,
        node: str,
        ref: str,
        *,
        base_image: str,
        labels: Mapping[str, str],
        extra_files: Mapping[str, bytes],
        moves: Mapping[str, str] | None = None,
    ) -> SnapshotImage:
        """Make ``ref`` from a stopped node: its root file system, its ``/var`` volume (which a
        commit leaves out), and ``extra_files`` (absolute path -> content) on top.

        ``moves`` maps directories of ``/var`` to directories outside it: their entries are
        kept there, read-only in the image, with symbolic links in their place, so that a new
        node's volume does not get a copy of them.
        """
        ...

    def images(self, label: str) -> list[SnapshotImage]:
        """Every image carrying ``label`` (``key`` or ``key=value``)."""
        ...

    def remove_image(self, ref: str) -> bool:
        """Remove an image; False when a container still uses it."""
        ...

    def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        """Create a private bridge network for one cluster."""
        ...

    def networks(self, label: str) -> list[NetworkInfo]:
        """Every network carrying ``label``."""
        ...


@runtime_checkable
class SnapshotEngine(Protocol):
    """An engine that can hold snapshots (Docker can)."""

    def snapshots(self) -> SnapshotStore:
        """The engine's snapshot operations."""
        ...


class Engine(NodeRuntime, HostImages, Protocol):
    """An engine that runs nodes and also holds the host's images (Docker does both)."""


@dataclass(frozen=True)
class Node:
    """A handle on one node container; ``exec`` is all the steps after creation use."""

    name: str
    role: Role
    runtime: NodeRuntime = field(repr=False, compare=False)

    def exec(
        self,
        *argv: str,
        stdin: bytes | str | Path | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> ExecResult:
        """Run ``argv`` in the node; a non-zero exit raises :class:`CommandFailed` if ``check``."""
        data = stdin.encode() if isinstance(stdin, str) else stdin
        result = self.runtime.exec(self.name, argv, stdin=data, env=env)
        # Redacted: outputs include admin.conf's client key, and an HA join's tar of CA keys.
        output = printable(result.raw_stdout + result.raw_stderr)
        command = redact(" ".join(argv))
        log.debug("%s: %s -> exit %d\n%s", self.name, command, result.exit_code, output)
        if check and result.exit_code != 0:
            raise CommandFailed(argv, result.exit_code, result.output, node=self.name)
        return result

    def details(self) -> NodeDetails:
        """The node as the engine sees it now (IP address, published ports, state)."""
        return self.runtime.inspect_node(self.name)
