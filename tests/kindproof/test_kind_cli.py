"""Proof, independent of the plugin's code, that our node image honours kind's contract.

The upstream kind CLI creates a 1 + 2 node cluster from the image; every check then runs with the
kubectl inside the control-plane node. Nothing here imports pytest_kindcluster except the pinned
default image name.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pytest_kindcluster.contract import CLUSTER_LABEL, DEFAULT_NODE_IMAGE
from tests.support import KIND_INSTALL_HINT, find_kind_cli, kind_cli_config, leftovers

pytestmark = pytest.mark.kindproof


def kind_binary() -> str:
    found = find_kind_cli()
    if found is None:
        pytest.fail(f"the kind CLI is not installed; run: {KIND_INSTALL_HINT}")
    return found


class Cluster:
    def __init__(self, client: docker.DockerClient, name: str) -> None:
        self.client = client
        self.name = name
        self.control_plane = client.containers.get(f"{name}-control-plane")

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        argv = ["kubectl", *args]
        if stdin is not None:
            # exec_run cannot feed stdin, so the manifest travels as an argument to bash.
            argv = [
                "bash",
                "-c",
                'm="$1"; shift; printf "%s" "$m" | kubectl "$@"',
                "bash",
                stdin,
                *args,
            ]
        result = self.control_plane.exec_run(
            argv, environment={"KUBECONFIG": "/etc/kubernetes/admin.conf"}
        )
        assert isinstance(result.output, bytes)
        output = result.output.decode(errors="replace")
        assert result.exit_code == 0, f"kubectl {' '.join(args)} failed:\n{output}"
        return str(output)


@pytest.fixture(scope="module")
def kind_created(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    client = docker.from_env()
    kind = kind_binary()
    image = os.environ.get("KINDCLUSTER_NODE_IMAGE", DEFAULT_NODE_IMAGE)
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        pytest.fail(
            f"node image {image} is not built; run: python -m pytest_kindcluster node-image build"
        )
    cgroup_v1 = str(client.info().get("CgroupVersion")) == "1"
    tmp = tmp_path_factory.mktemp("kindproof")
    config = tmp / "kind.yaml"
    config.write_text(kind_cli_config(2, cgroup_v1=cgroup_v1))
    name = f"proof-{uuid.uuid4().hex[:6]}"
    # kind binds /lib/modules with `docker run -v`, and dockerd creates a missing bind source. A
    # fresh host has none (see test_fresh_host.py): leave the host as it was found, so later runs
    # keep testing that case.
    lib_modules = Path("/lib/modules")
    had_lib_modules = lib_modules.exists()
    create = subprocess.run(
        [
            kind,
            "create",
            "cluster",
            "--name",
            name,
            "--image",
            image,
            "--config",
            str(config),
            "--kubeconfig",
            str(tmp / "kubeconfig"),
            "--retain",
            "--wait",
            "0s",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        assert create.returncode == 0, f"kind create cluster failed:\n{create.stderr}"
        yield Cluster(client, name)
    finally:
        # The volumes this cluster's nodes mount (their anonymous /var), recorded before delete;
        # other clusters may come and go on this engine meanwhile.
        node_volumes = {
            str(m["Name"])
            for c in client.containers.list(all=True, filters={"label": f"{CLUSTER_LABEL}={name}"})
            for m in c.attrs["Mounts"]
            if m["Type"] == "volume"
        }
        if create.returncode != 0 or os.environ.get("KINDPROOF_EXPORT_LOGS"):
            subprocess.run(
                [kind, "export", "logs", str(tmp / "logs"), "--name", name],
                capture_output=True,
                check=False,
            )
            print(f"kind logs exported to {tmp / 'logs'}")
        delete = subprocess.run(
            [kind, "delete", "cluster", "--name", name, "--kubeconfig", str(tmp / "kubeconfig")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert delete.returncode == 0, delete.stderr
        left_containers = leftovers(client, name)["containers"]
        assert left_containers == [], f"kind delete left containers: {left_containers}"
        assert node_volumes, "the nodes mounted no volume: /var should be an anonymous volume"
        left = node_volumes & {str(v.name) for v in client.volumes.list()}
        assert left == set(), f"kind delete left volumes: {left}"
        if not had_lib_modules and lib_modules.is_dir() and not any(lib_modules.iterdir()):
            lib_modules.rmdir()


def test_every_node_ready(kind_created: Cluster) -> None:
    kind_created.kubectl("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=300s")
    nodes = json.loads(kind_created.kubectl("get", "nodes", "-o", "json"))["items"]
    assert len(nodes) == 3


def test_coredns_ready(kind_created: Cluster) -> None:
    kind_created.kubectl(
        "-n",
        "kube-system",
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "k8s-app=kube-dns",
        "--timeout=300s",
    )
    pods = json.loads(
        kind_created.kubectl(
            "-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json"
        )
    )["items"]
    assert len(pods) >= 1


def _workers(cluster: Cluster) -> list[str]:
    return sorted(
        str(c.name)
        for c in cluster.client.containers.list(
            filters={"label": [f"{CLUSTER_LABEL}={cluster.name}", "io.x-k8s.kind.role=worker"]}
        )
    )


def _busybox_pod(name: str, node: str, command: str, extra: str = "") -> str:
    return (
        textwrap.dedent(f"""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: {name}
          labels: {{app: {name}}}
        spec:
          nodeName: {node}
          restartPolicy: Never
          containers:
          - name: main
            image: busybox:1.36
            imagePullPolicy: Never
            command: ["sh", "-c", {json.dumps(command)}]
        """)
        + extra
    )


def test_dns_and_cross_node_service(kind_created: Cluster) -> None:
    kind_created.kubectl("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=300s")
    client_node, backend_node = _workers(kind_created)
    backend = _busybox_pod(
        "backend",
        backend_node,
        "mkdir -p /www && echo hello-from-backend > /www/index.html && httpd -f -p 8080 -h /www",
    )
    service = textwrap.dedent("""\
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: backend}
        spec:
          selector: {app: backend}
          ports: [{port: 80, targetPort: 8080}]
        """)
    kind_created.kubectl("apply", "-f", "-", stdin=backend + service)
    kind_created.kubectl("wait", "--for=condition=Ready", "pod/backend", "--timeout=180s")
    # kube-proxy programs a new Service within a second or two; retry for a minute, then fail.
    probe = _busybox_pod(
        "probe",
        client_node,
        "for i in $(seq 30); do nslookup kubernetes.default.svc.cluster.local"
        " && wget -q -T 3 -O - http://backend && exit 0; sleep 2; done; exit 1",
    )
    kind_created.kubectl("apply", "-f", "-", stdin=probe)
    try:
        kind_created.kubectl(
            "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/probe", "--timeout=180s"
        )
    finally:
        logs = kind_created.kubectl("logs", "probe")
        print(logs)
    assert "kubernetes.default.svc.cluster.local" in logs
    assert "10.96.0.1" in logs
    assert "hello-from-backend" in logs
    placed = kind_created.kubectl(
        "get", "pods", "backend", "probe", "-o", "jsonpath={.items[*].spec.nodeName}"
    ).split()
    assert placed[0] != placed[1]


def test_pvc_binds_and_is_written(kind_created: Cluster) -> None:
    manifest = textwrap.dedent("""\
        apiVersion: v1
        kind: PersistentVolumeClaim
        metadata: {name: data}
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 16Mi}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: writer}
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: busybox:1.36
            imagePullPolicy: Never
            command: ["sh", "-c", "echo persisted > /data/f && cat /data/f"]
            volumeMounts: [{name: data, mountPath: /data}]
          volumes:
          - name: data
            persistentVolumeClaim: {claimName: data}
        """)
    kind_created.kubectl("apply", "-f", "-", stdin=manifest)
    kind_created.kubectl(
        "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/writer", "--timeout=240s"
    )
    assert "persisted" in kind_created.kubectl("logs", "writer")
    phase = kind_created.kubectl("get", "pvc", "data", "-o", "jsonpath={.status.phase}")
    assert phase == "Bound"
    sc = kind_created.kubectl("get", "pvc", "data", "-o", "jsonpath={.spec.storageClassName}")
    assert sc == "standard"
