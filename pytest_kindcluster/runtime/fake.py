"""An in-memory engine for testing the layers above the runtime without Docker.

It ships in the package (as httpx ships its mock transport), so users can unit-test code built on
``KindCluster`` or the fixtures too: ``KindCluster(name, runtime=fake, images=fake)``.

It answers the commands the create flow runs (``cat``, ``cp /dev/stdin``, kubeadm, kubectl)
from a small file table and records every call, so tests assert on what was asked of the nodes.
Any command can be made to fail with :meth:`FakeRuntime.fail`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pytest_kindcluster.contract import (
    CLUSTER_LABEL,
    DEFAULT_NETWORK,
    NETWORK_CLUSTER_LABEL,
    ROLE_LABEL,
)
from pytest_kindcluster.errors import EngineError, ImageError
from pytest_kindcluster.runtime.base import (
    ExecResult,
    HostImages,
    LabelledResources,
    Node,
    NodeDetails,
    NodeRuntime,
    NodeSpec,
    Resource,
    RuntimeInfo,
)
from pytest_kindcluster.runtime.fake_snapshots import FakeSnapshots

CNI_TEMPLATE = """\
# would you kindly template this file
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-router, namespace: kube-system}
spec:
  template:
    spec:
      containers:
      - name: kube-router
        args: ["--pod-cidr={{ .PodSubnet }}"]
"""


def admin_conf(cluster_name: str = "kubernetes") -> str:
    """A kubeconfig shaped like kubeadm's admin.conf, with dummy credentials."""
    data = base64.b64encode(b"not a real certificate").decode()
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster_name,
                    "cluster": {
                        "server": "https://demo-control-plane:6443",
                        "certificate-authority-data": data,
                    },
                }
            ],
            "users": [
                {
                    "name": "kubernetes-admin",
                    "user": {"client-certificate-data": data, "client-key-data": data},
                }
            ],
            "contexts": [
                {
                    "name": "kubernetes-admin@kubernetes",
                    "context": {"cluster": cluster_name, "user": "kubernetes-admin"},
                }
            ],
            "current-context": "kubernetes-admin@kubernetes",
        }
    )


@dataclass
class FakeContainer:
    spec: NodeSpec
    labels: dict[str, str]
    ip: str
    files: dict[str, bytes] = field(default_factory=dict)


# The fake node image's kubectl: it reports how it was run (arguments, KUBECONFIG, working
# directory, stdin), so tests can check that kubectl() runs on the host as a host kubectl would.
FAKE_KUBECTL = b"""#!/bin/sh
[ "$1" = fail ] && { echo "error: told to fail" >&2; exit 3; }
echo "args: $*"
echo "KUBECONFIG=$KUBECONFIG"
echo "KUBECACHEDIR=$KUBECACHEDIR"
echo "cwd: $(pwd)"
echo "stdin: $(cat)"
"""
NODE_IMAGE_FILES: Mapping[str, bytes] = {
    "/kind/version": b"v1.37.2\n",
    "/usr/bin/kubectl": FAKE_KUBECTL,
}


class FakeRuntime:
    """NodeRuntime + HostImages in memory."""

    def __init__(
        self,
        *,
        images: Mapping[str, str] | None = None,
        cgroup_version: int = 1,
        image_files: Mapping[str, Mapping[str, bytes]] | None = None,
    ) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.networks: dict[str, dict[str, str]] = {}
        default = {"pytest-kindcluster/node:v1.37.2": "sha256:node"}
        self.images = dict(images if images is not None else default)
        # What each image holds, by reference: the default node image has kind's files.
        self.image_files: dict[str, dict[str, bytes]] = {
            ref: dict(files)
            for ref, files in (
                image_files
                if image_files is not None
                else {"pytest-kindcluster/node:v1.37.2": NODE_IMAGE_FILES}
            ).items()
        }
        #: (ref, path) of every copy_from_image call, to count extractions.
        self.copies: list[tuple[str, str]] = []
        self.cgroup_version = cgroup_version
        self.calls: list[tuple[str, tuple[str, ...], bytes | None]] = []
        self.exports: list[tuple[str, str]] = []
        self._failures: list[tuple[tuple[str, ...], int, str]] = []
        self._replies: list[tuple[tuple[str, ...], str]] = []
        #: nodes the engine refuses to remove (like a node whose processes cannot be killed)
        self.unremovable: set[str] = set()
        self._snapshots: FakeSnapshots | None = None

    # -- test controls ---------------------------------------------------------------------------

    def fail(self, argv_prefix: Sequence[str], *, exit_code: int = 1, output: str = "boom") -> None:
        """Make every command starting with ``argv_prefix`` exit non-zero with ``output``."""
        self._failures.append((tuple(argv_prefix), exit_code, output))

    def reply(self, argv_prefix: Sequence[str], output: str) -> None:
        """Make every command starting with ``argv_prefix`` succeed, printing ``output``."""
        self._replies.append((tuple(argv_prefix), output))

    def add_foreign_node(self, name: str, cluster: str) -> None:
        """A node made by someone else (no run-id label of ours)."""
        spec = NodeSpec(name, cluster, "control-plane", "other", "kind")
        labels = {CLUSTER_LABEL: cluster, ROLE_LABEL: "control-plane"}
        self.containers[name] = FakeContainer(spec, labels, "172.18.0.99")

    def commands(self, node: str | None = None) -> list[tuple[str, ...]]:
        """The argv of every exec, optionally only those on one node."""
        return [argv for n, argv, _ in self.calls if node is None or n == node]

    def stdin_of(self, *argv_prefix: str) -> str:
        """The stdin fed to the last command starting with ``argv_prefix``."""
        for _, argv, stdin in reversed(self.calls):
            if argv[: len(argv_prefix)] == argv_prefix:
                return (stdin or b"").decode()
        raise AssertionError(f"no command {argv_prefix} was run")

    # -- NodeRuntime ------------------------------------------------------------------------------

    def info(self) -> RuntimeInfo:
        return RuntimeInfo("fake", "1.0", "1.45", self.cgroup_version, "amd64")

    def ensure_network(self, name: str, labels: Mapping[str, str] | None = None) -> bool:
        if name in self.networks:
            return False
        self.networks[name] = dict(labels or {})
        return True

    def remove_network(self, name: str) -> bool:
        labels = self.networks.get(name)
        in_use = any(c.spec.network == name for c in self.containers.values())
        dedicated = labels is not None and NETWORK_CLUSTER_LABEL in labels
        if name == DEFAULT_NETWORK or not dedicated or in_use:
            return False
        del self.networks[name]
        return True

    def run_node(self, spec: NodeSpec) -> Node:
        labels = {CLUSTER_LABEL: spec.cluster, ROLE_LABEL: spec.role, **spec.labels}
        ip = f"172.18.0.{len(self.containers) + 2}"
        self.containers[spec.name] = FakeContainer(spec, labels, ip)
        return Node(spec.name, spec.role, self)

    def list_nodes(self, cluster: str) -> list[Node]:
        found = [c for c in self.containers.values() if c.labels[CLUSTER_LABEL] == cluster]
        return sorted((Node(c.spec.name, c.spec.role, self) for c in found), key=lambda n: n.name)

    def inspect_node(self, name: str) -> NodeDetails:
        c = self.containers[name]
        ports = {"6443/tcp": ("127.0.0.1", 40000)} if c.spec.publish_api_server else {}
        return NodeDetails(name, c.spec.role, "running", c.spec.image, c.ip, c.labels, ports)

    def remove_nodes(self, names: Sequence[str]) -> None:
        # As the Docker runtime: every node is tried, then the refusals are reported together.
        refused = [name for name in names if name in self.unremovable]
        for name in names:
            if name not in refused:
                self.containers.pop(name, None)
        if refused:
            raise EngineError(
                f"remove node(s) {', '.join(refused)}",
                "could not kill: tried to kill container, but did not receive an exit event",
            )

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        stdin: bytes | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        data = stdin.read_bytes() if isinstance(stdin, Path) else stdin
        argv = tuple(argv)
        self.calls.append((node, argv, data))
        for prefix, code, output in self._failures:
            if argv[: len(prefix)] == prefix:
                return ExecResult(argv, code, b"", output.encode())
        for prefix, output in self._replies:
            if argv[: len(prefix)] == prefix:
                return ExecResult(argv, 0, output.encode())
        files = self.containers[node].files
        if argv[:2] == ("cp", "/dev/stdin"):
            files[argv[2]] = data or b""
            return ExecResult(argv, 0, b"")
        if argv[0] == "cat":
            content = files.get(argv[1], _DEFAULT_FILES.get(argv[1]))
            if content is None:
                return ExecResult(argv, 1, b"", f"cat: {argv[1]}: No such file".encode())
            return ExecResult(argv, 0, content)
        return ExecResult(argv, 0, b"")

    def logs(self, node: str, *, tail: int | None = None) -> str:
        return "Reached target Multi-User System.\n"

    def resources(self) -> LabelledResources:
        return self

    def snapshots(self) -> FakeSnapshots:
        """One store per fake engine, so a test sees what a capture left."""
        if self._snapshots is None:
            self._snapshots = FakeSnapshots(self)
        return self._snapshots

    # -- LabelledResources: the fake's containers (it keeps no volumes) ---------------------------

    def labelled(self, label: str) -> list[Resource]:
        key, _, value = label.partition("=")
        return [
            Resource("container", name, dict(c.labels))
            for name, c in sorted(self.containers.items())
            if key in c.labels and (not value or c.labels[key] == value)
        ]

    def remove(self, resource: Resource) -> bool:
        return self.containers.pop(resource.name, None) is not None or resource.kind == "container"

    # -- HostImages -----------------------------------------------------------------------------

    def image_id(self, ref: str) -> str | None:
        return self.images.get(ref)

    def pull_image(self, ref: str) -> None:
        # Like a machine without a registry: every pull fails at once.
        raise ImageError(f"cannot pull {ref}: the fake engine has no registry")

    def copy_from_image(self, ref: str, path: str, dest: Path) -> bool:
        if ref not in self.images:
            raise ImageError(f"no such image: {ref}")
        self.copies.append((ref, path))
        content = self.image_files.get(ref, {}).get(path)
        if content is None:
            return False
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(content)
        dest.chmod(0o755)
        return True

    def export_image(self, ref: str, dest: Path, platform: str) -> None:
        self.exports.append((ref, platform))
        dest.write_bytes(b"archive of " + ref.encode())


_DEFAULT_FILES: dict[str, bytes] = {
    "/kind/version": b"v1.37.2\n",
    "/etc/kubernetes/admin.conf": admin_conf().encode(),
    "/kind/manifests/default-cni.yaml": CNI_TEMPLATE.encode(),
    "/kind/manifests/default-storage.yaml": b"kind: StorageClass\n",
}

# mypy proves the fake honours both protocols, as DockerRuntime does.
_: type[NodeRuntime] = FakeRuntime
_images: type[HostImages] = FakeRuntime
