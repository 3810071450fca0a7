"""DockerRuntime: the NodeRuntime on the Docker Engine API, through the ``docker`` SDK.

Only the ``runtime`` package touches ``docker``: its exceptions are translated once, with
``raise ... from``, into the package's error tree by :func:`docker_errors.engine_errors`. The
shared network lives in :mod:`docker_network`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import docker
import docker.errors
from docker.types import EndpointConfig, Mount

from pytest_kindcluster.contract import API_SERVER_PORT, CLUSTER_LABEL, ROLE_LABEL
from pytest_kindcluster.errors import EngineError
from pytest_kindcluster.runtime.base import (
    Engine,
    ExecResult,
    HostImages,
    Node,
    NodeDetails,
    NodeRuntime,
    NodeSpec,
    Role,
    RuntimeInfo,
)
from pytest_kindcluster.runtime.docker.client import connect
from pytest_kindcluster.runtime.docker.errors import engine_errors
from pytest_kindcluster.runtime.docker.extras import (
    extra_mounts,
    extra_ports,
    host_mounts,
    run_load_balancer,
)
from pytest_kindcluster.runtime.docker.imagefiles import copy_from_image
from pytest_kindcluster.runtime.docker.network import ensure_network, remove_network
from pytest_kindcluster.runtime.docker.removal import remove_node
from pytest_kindcluster.runtime.docker.resources import DockerResources, pull_image
from pytest_kindcluster.runtime.docker.snapshots import DockerSnapshots
from pytest_kindcluster.runtime.docker.streams import CHUNK, pump
from pytest_kindcluster.util.concurrency import run_all
from pytest_kindcluster.util.waiting import wait_until

# Docker reports the kernel's machine name; images and ctr speak Go's GOARCH.
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


class DockerRuntime:
    """Nodes as privileged containers running systemd, created the way ``kind`` creates them."""

    def __init__(
        self,
        client: docker.DockerClient | None = None,
        *,
        exec_timeout: float = 900,
        host_root: Path | None = Path("/"),
    ) -> None:
        self._client = client if client is not None else connect()
        # Longest silence tolerated from a command in a node before we call it hung.
        self._exec_timeout = exec_timeout
        # Where the engine's host paths are visible to this process (see extras.host_mounts);
        # only an engine on a local socket shares our file system.
        local = str(self._client.api.base_url).startswith("http+docker://localhost")
        self.host_root = host_root if local else None

    # -- engine and network -------------------------------------------------------------------

    def info(self) -> RuntimeInfo:
        """Describe the engine; the cgroup version decides ``failCgroupV1`` for new kubelets."""
        with engine_errors("read the engine's info"):
            info = self._client.info()
            version = self._client.version()
        arch = str(info.get("Architecture", "x86_64"))
        return RuntimeInfo(
            name="docker",
            version=str(info.get("ServerVersion", "")),
            api_version=str(version.get("ApiVersion", "")),
            cgroup_version=int(info.get("CgroupVersion") or 1),
            arch=_ARCH.get(arch, arch),
        )

    def ensure_network(self, name: str, labels: Mapping[str, str] | None = None) -> bool:
        """Create the bridge network if it is missing; True when this call created it."""
        return ensure_network(self._client, name, labels)

    def remove_network(self, name: str) -> bool:
        """Remove a network made for one cluster alone once unused; never the shared one."""
        return remove_network(self._client, name)

    # -- nodes --------------------------------------------------------------------------------

    def run_node(self, spec: NodeSpec) -> Node:
        """Run a node with kind's flags (docs/node-contract.md#container-settings).

        kind: ``pkg/cluster/internal/providers/docker/provision.go``.
        """
        labels = {CLUSTER_LABEL: spec.cluster, ROLE_LABEL: spec.role, **spec.labels}
        env = dict(spec.env)
        ports: dict[str, Any] = {}
        if spec.publish_api_server:
            if spec.role != "external-load-balancer":
                env.setdefault("KUBECONFIG", "/etc/kubernetes/admin.conf")
            # Host port 0: Docker picks a free one atomically, which avoids the
            # bind-then-release race kind has when it chooses the port itself.
            ports[f"{API_SERVER_PORT}/tcp"] = spec.api_server
        ports.update(extra_ports(spec))
        if spec.role == "external-load-balancer":
            with engine_errors(f"run load balancer {spec.name!r} from image {spec.image!r}"):
                run_load_balancer(self._client, spec, labels, ports)
            return Node(spec.name, spec.role, self)
        mounts = [
            # The anonymous /var volume is what lets containerd's overlayfs work inside the node;
            # labelled so a leak is findable, anonymous so `docker rm -v` (and kind) removes it.
            # Owner labels too, so a volume that outlives its container can be reaped.
            Mount("/var", None, type="volume", labels={CLUSTER_LABEL: spec.cluster, **spec.labels}),
            *host_mounts(self.host_root),
            *extra_mounts(spec),
        ]
        endpoint = EndpointConfig(self._client.api.api_version, aliases=list(spec.aliases))
        with engine_errors(f"run node {spec.name!r} from image {spec.image!r}"):
            # create + start, not containers.run: run() pulls a missing image, and a node image
            # must come from the local engine (the machine may have no registry at all).
            container = self._client.containers.create(
                spec.image,
                name=spec.name,
                hostname=spec.hostname or spec.name,
                labels=labels,
                environment=env,
                privileged=True,
                security_opt=["seccomp=unconfined", "apparmor=unconfined"],
                tmpfs={"/tmp": "", "/run": ""},
                mounts=mounts,
                network=spec.network,
                networking_config={spec.network: endpoint} if spec.aliases else None,
                restart_policy={"Name": "on-failure", "MaximumRetryCount": 1},
                init=False,
                cgroupns="private",
                tty=True,
                ports=ports,
            )
            container.start()
        return Node(spec.name, spec.role, self)

    def list_nodes(self, cluster: str) -> list[Node]:
        """Find a cluster's nodes from their labels; the engine is the only source of truth."""
        with engine_errors(f"list the nodes of cluster {cluster!r}"):
            found = self._client.containers.list(
                all=True, filters={"label": f"{CLUSTER_LABEL}={cluster}"}
            )
        nodes = [Node(c.name or c.id or "", _role(c.labels.get(ROLE_LABEL)), self) for c in found]
        return sorted(nodes, key=lambda n: n.name)

    def inspect_node(self, name: str) -> NodeDetails:
        """Read a node's state, address and published ports."""
        with engine_errors(f"inspect node {name!r}"):
            attrs = self._client.api.inspect_container(name)
        settings = attrs.get("NetworkSettings") or {}
        networks: dict[str, Any] = settings.get("Networks") or {}
        ipv4 = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
        ports: dict[str, tuple[str, int]] = {}
        for container_port, bindings in (settings.get("Ports") or {}).items():
            if bindings:
                ports[container_port] = (bindings[0]["HostIp"], int(bindings[0]["HostPort"]))
        labels = attrs["Config"].get("Labels") or {}
        return NodeDetails(
            name=name,
            role=_role(labels.get(ROLE_LABEL)),
            state=str(attrs["State"].get("Status", "")),
            image=str(attrs["Config"].get("Image", "")),
            ipv4=ipv4,
            labels=labels,
            ports=ports,
            inspect=attrs,
        )

    def remove_nodes(self, names: Sequence[str]) -> None:
        """``docker rm -f -v`` for each node, concurrently; already-gone nodes are fine.

        Frozen cgroups inside a node are thawed first (see removal.py). Every node is tried;
        the ones that could not be removed are reported together in one EngineError.
        """

        def remove(name: str) -> None:
            remove_node(self._client, name, self.host_root)

        try:
            run_all(remove, list(names), what="remove nodes")
        except ExceptionGroup as group:
            reasons = [
                f"{exc.operation}: {exc.message}" if isinstance(exc, EngineError) else str(exc)
                for exc in group.exceptions
            ]
            error = EngineError("remove nodes", "; ".join(reasons))
            for exc in group.exceptions:
                for note in getattr(exc, "__notes__", []):
                    error.add_note(note)
            raise error from group

    def logs(self, node: str, *, tail: int | None = None) -> str:
        """The node's console: with a tty, systemd's boot messages land here."""
        with engine_errors(f"read the logs of node {node!r}"):
            data = self._client.api.logs(node, stdout=True, stderr=True, tail=tail or "all")
        return data.decode(errors="replace")

    # -- exec ---------------------------------------------------------------------------------

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        stdin: bytes | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        """``docker exec --privileged [-i]``: run argv, stream stdin in, collect both outputs."""
        api = self._client.api
        with engine_errors(f"exec {' '.join(argv)!r} in node {node!r}"):
            exec_id = api.exec_create(
                node,
                list(argv),
                stdin=stdin is not None,
                privileged=True,
                environment=dict(env or {}),
            )["Id"]
            sock = api.exec_start(exec_id, socket=True)
            stdout, stderr = pump(sock, stdin, timeout=self._exec_timeout)
            exit_code = wait_until(
                lambda: api.exec_inspect(exec_id).get("ExitCode"),
                what=f"exit code of {argv[0]} in {node}",
                timeout=30,
                interval=0.05,
            )
        return ExecResult(tuple(argv), int(exit_code), stdout, stderr)

    # -- host images (HostImages) --------------------------------------------------------------

    def image_id(self, ref: str) -> str | None:
        """The image's ID, or None when the engine does not have it."""
        with engine_errors(f"inspect image {ref!r}"):
            try:
                return str(self._client.images.get(ref).id)
            except docker.errors.ImageNotFound:
                return None

    def resources(self) -> DockerResources:
        """Labelled containers and volumes across clusters, for reaping orphans."""
        return DockerResources(self._client)

    def snapshots(self) -> DockerSnapshots:
        """Capture clusters into images and give clones their own networks."""
        return DockerSnapshots(self._client)

    def pull_image(self, ref: str) -> None:
        """``docker pull``; a registry that cannot be reached fails in well under a second."""
        pull_image(self._client, ref)

    def copy_from_image(self, ref: str, path: str, dest: Path) -> bool:
        """``docker cp`` out of a created, never-started container of ``ref`` (then removed)."""
        return copy_from_image(self._client, ref, path, dest)

    def export_image(self, ref: str, dest: Path, platform: str) -> None:
        """``docker save`` one platform of ``ref`` into ``dest``.

        A multi-platform archive breaks ``ctr import`` under Docker's containerd image store
        (kind issues 3795, 3996, 4224). API 1.48 can select the platform; older engines use the
        classic store, whose archives hold a single platform anyway.
        """
        api = self._client.api
        with engine_errors(f"save image {ref!r}"):
            if _api_at_least(api.api_version, "1.48"):
                os_name, _, arch = platform.partition("/")
                params = {"platform": json.dumps({"os": os_name, "architecture": arch})}
                # docker-py has no platform argument for save; APIClient is a requests.Session.
                url = f"{api.base_url}/v{api.api_version}/images/{quote(ref, safe='')}/get"
                response = api.get(url, params=params, stream=True)
                response.raise_for_status()
                stream: Iterator[bytes] = response.iter_content(CHUNK)
            else:
                stream = api.get_image(ref, chunk_size=CHUNK)
            with dest.open("wb") as out:
                for chunk in stream:
                    out.write(chunk)


def _role(value: str | None) -> Role:
    if value in ("control-plane", "external-load-balancer"):
        return value  # type: ignore[return-value]  # narrowed by the membership test
    return "worker"


def _api_at_least(version: str, wanted: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in v.split("."))

    return parts(version) >= parts(wanted)


# mypy checks that DockerRuntime really is a NodeRuntime and an HostImages (kind's `var _ = ...`).
_: type[NodeRuntime] = DockerRuntime
_images: type[HostImages] = DockerRuntime
_engine: type[Engine] = DockerRuntime
