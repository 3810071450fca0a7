"""A whole pytest session against a single-node cluster, run by test_sessions.py.

Not collected on its own (no test_ prefix): the outer test runs it in a subprocess so the
session's own teardown can be checked from outside.
"""

from __future__ import annotations

import stat
import uuid
from io import BytesIO
from pathlib import Path
from typing import Any

import docker
import yaml
from kubernetes import client as k8s_client

from pytest_kindcluster import KindCluster
from pytest_kindcluster.util.waiting import wait_until

SEEN_NAMESPACES: list[str] = []


def test_single_node_is_ready_and_schedulable(kind_cluster: KindCluster, kind_client: Any) -> None:
    core: Any = k8s_client.CoreV1Api(kind_client)
    nodes = core.list_node().items
    assert [n.metadata.name for n in nodes] == [f"{kind_cluster.name}-control-plane"]
    ready = next(c for c in nodes[0].status.conditions if c.type == "Ready")
    assert ready.status == "True"
    assert not [t for t in nodes[0].spec.taints or [] if t.effect == "NoSchedule"]
    apps: Any = k8s_client.AppsV1Api(kind_client)
    dns = apps.read_namespaced_deployment("coredns", "kube-system")
    assert dns.status.available_replicas == dns.spec.replicas
    assert [n.name for n in kind_cluster.nodes] == [f"{kind_cluster.name}-control-plane"]


def test_kubeconfig_is_private_and_points_at_loopback(kind_cluster: KindCluster) -> None:
    path = Path(kind_cluster.kubeconfig_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = yaml.safe_load(path.read_text())
    server = doc["clusters"][0]["cluster"]["server"]
    assert server.startswith("https://127.0.0.1:")
    assert doc["current-context"] == f"kind-{kind_cluster.name}"
    engine = docker.from_env()
    ports = engine.api.inspect_container(f"{kind_cluster.name}-control-plane")["HostConfig"][
        "PortBindings"
    ]
    assert ports["6443/tcp"][0]["HostIp"] == "127.0.0.1"


def test_api_client_is_not_the_global_default(kind_client: Any) -> None:
    default = k8s_client.Configuration.get_default_copy()
    assert default.host != kind_client.configuration.host


def test_kubectl_runs_on_the_host(kind_cluster: KindCluster) -> None:
    out = kind_cluster.kubectl("get", "nodes", "-o", "name")
    assert out == f"node/{kind_cluster.name}-control-plane\n"


def test_namespace_first(kind_cluster: KindCluster, kind_namespace: str, kind_client: Any) -> None:
    SEEN_NAMESPACES.append(kind_namespace)
    kind_cluster.apply(
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata: {{name: marker, namespace: {kind_namespace}}}\ndata: {{owner: first}}\n"
    )
    core: Any = k8s_client.CoreV1Api(kind_client)
    assert core.read_namespaced_config_map("marker", kind_namespace).data == {"owner": "first"}


def test_namespace_second_is_fresh_and_the_first_is_gone(
    kind_namespace: str, kind_client: Any
) -> None:
    (first,) = SEEN_NAMESPACES
    assert kind_namespace != first
    core: Any = k8s_client.CoreV1Api(kind_client)
    assert (
        core.list_namespaced_config_map(kind_namespace, field_selector="metadata.name=marker").items
        == []
    )
    leftover = core.list_namespace(field_selector=f"metadata.name={first}").items
    assert leftover == [] or leftover[0].status.phase == "Terminating"


def test_load_docker_image_then_a_pod_runs_it(
    kind_cluster: KindCluster, kind_namespace: str, kind_client: Any
) -> None:
    engine = docker.from_env()
    token = uuid.uuid4().hex[:8]
    tag = f"kindcluster-test/hello:{token}"
    dockerfile = f'FROM busybox:1.36\nRUN echo hello-{token} > /hello\nCMD ["cat", "/hello"]\n'
    engine.images.build(fileobj=BytesIO(dockerfile.encode()), tag=tag, rm=True, pull=False)
    try:
        assert kind_cluster.load_docker_image(tag) == [f"{kind_cluster.name}-control-plane"]
        assert kind_cluster.load_docker_image(tag) == []  # same image ID already there
        kind_cluster.apply(
            f"""
apiVersion: v1
kind: Pod
metadata: {{name: hello, namespace: {kind_namespace}}}
spec:
  restartPolicy: Never
  containers:
  - name: hello
    image: {tag}
    imagePullPolicy: Never
"""
        )
        core: Any = k8s_client.CoreV1Api(kind_client)

        def finished() -> str | None:
            phase = core.read_namespaced_pod("hello", kind_namespace).status.phase
            return phase if phase in ("Succeeded", "Failed") else None

        assert wait_until(finished, what="pod hello", timeout=120, interval=1) == "Succeeded"
        assert core.read_namespaced_pod_log("hello", kind_namespace) == f"hello-{token}\n"
    finally:
        engine.images.remove(tag, force=True)


def test_export_logs(kind_cluster: KindCluster, tmp_path: Path) -> None:
    dest = kind_cluster.export_logs(tmp_path / "logs")
    node_dir = dest / f"{kind_cluster.name}-control-plane"
    assert "Multi-User System" in (node_dir / "serial.log").read_text()
    assert "kubelet" in (node_dir / "kubelet.log").read_text()
    assert (node_dir / "kubernetes-version.txt").read_text().startswith("v1.")
    assert (node_dir / "var-log" / "pods").is_dir()
    assert not (dest / "export-errors.txt").exists()
