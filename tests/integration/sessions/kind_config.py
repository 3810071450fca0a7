"""A session on a cluster made from kind's YAML (configs/features.yaml), run by test_kind_config.py.

The module-level marker gives this module its own cluster; each test proves one field of the
file took effect in the real cluster.
"""

from __future__ import annotations

import concurrent.futures
import urllib.request
from typing import Any

import pytest
from kubernetes import client as k8s_client

from pytest_kindcluster import KindCluster
from pytest_kindcluster.util.waiting import wait_until

pytestmark = pytest.mark.kind_cluster(config="configs/features.yaml")

NAMESPACE = "features"
WEB = f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {NAMESPACE}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: {NAMESPACE}, labels: {{app: web}}}}
spec:
  containers:
  - name: httpd
    image: busybox:1.36
    command:
    - sh
    - -c
    - mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www
    ports: [{{name: http, containerPort: 8080}}]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {NAMESPACE}}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{name: web, port: 80, targetPort: http, nodePort: 30080}}]
"""


def run_pod(cluster: KindCluster, name: str, manifest: str) -> str:
    """Run a pod to completion and return its log."""
    cluster.apply(manifest)
    cluster.kubectl(
        "wait", "-n", NAMESPACE, f"pod/{name}", "--for=jsonpath={.status.phase}=Succeeded",
        "--timeout=120s",
    )  # fmt: skip
    return cluster.kubectl("logs", "-n", NAMESPACE, name)


@pytest.fixture(scope="module")
def web(kind_cluster: KindCluster) -> str:
    kind_cluster.apply(WEB)
    kind_cluster.kubectl(
        "wait", "-n", NAMESPACE, "pod/web", "--for=condition=Ready", "--timeout=120s"
    )
    return "web"


def test_kubeadm_patch_reaches_the_apiserver_static_pod(
    kind_cluster: KindCluster, kind_client: Any
) -> None:
    node = kind_cluster.nodes[0]
    manifest = node.exec("cat", "/etc/kubernetes/manifests/kube-apiserver.yaml").stdout
    assert "--max-requests-inflight=123" in manifest
    core: Any = k8s_client.CoreV1Api(kind_client)
    pod = core.read_namespaced_pod(f"kube-apiserver-{node.name}", "kube-system")
    assert "--max-requests-inflight=123" in pod.spec.containers[0].command


def test_node_label_from_the_config(kind_client: Any, kind_cluster: KindCluster) -> None:
    core: Any = k8s_client.CoreV1Api(kind_client)
    node = core.read_node(kind_cluster.nodes[0].name)
    assert node.metadata.labels["example.com/tier"] == "features"


def test_feature_gate_is_on_in_apiserver_and_kubelet(kind_cluster: KindCluster) -> None:
    metrics = kind_cluster.kubectl("get", "--raw", "/metrics")
    assert 'kubernetes_feature_enabled{name="ContainerStopSignals",stage="ALPHA"} 1' in metrics
    node = kind_cluster.nodes[0].name
    configz = kind_cluster.kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/configz")
    assert '"ContainerStopSignals":true' in configz


def test_extra_mount_is_visible_through_a_hostpath_volume(
    kind_cluster: KindCluster, web: str
) -> None:
    log = run_pod(
        kind_cluster,
        "reader",
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: reader, namespace: {NAMESPACE}}}
spec:
  restartPolicy: Never
  containers:
  - name: cat
    image: busybox:1.36
    command: [cat, /data/hello.txt]
    volumeMounts: [{{name: host, mountPath: /data}}]
  volumes:
  - name: host
    hostPath: {{path: /mnt/host-data, type: Directory}}
""",
    )
    assert log.strip() == "mounted from the host"


def test_nftables_kube_proxy_serves_a_service(kind_cluster: KindCluster, web: str) -> None:
    mode = kind_cluster.kubectl("get", "-n", "kube-system", "configmap", "kube-proxy", "-o", "yaml")
    assert "mode: nftables" in mode
    node = kind_cluster.nodes[0]
    rules = node.exec("nft", "list", "table", "ip", "kube-proxy").stdout
    assert f"{NAMESPACE}/web" in rules  # the Service's own nftables rules
    assert "KUBE-SVC-" not in node.exec("iptables-save").stdout  # and no iptables-mode rules
    log = run_pod(
        kind_cluster,
        "client",
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {NAMESPACE}}}
spec:
  restartPolicy: Never
  containers:
  - name: wget
    image: busybox:1.36
    command: [wget, -qO-, -T, "10", "http://web.{NAMESPACE}.svc.cluster.local/index.html"]
""",
    )
    assert log.strip() == "hello-from-web"


def test_extra_port_mapping_is_reachable_from_the_host(kind_cluster: KindCluster, web: str) -> None:
    host_ip, host_port = kind_cluster.nodes[0].details().ports["30080/tcp"]
    assert host_ip == "127.0.0.1"  # published on loopback unless listenAddress says otherwise
    body = wait_until(
        lambda: urllib.request.urlopen(f"http://127.0.0.1:{host_port}/", timeout=5).read(),
        what="the NodePort through the host port mapping",
        timeout=60,
        retry_on=(OSError,),
    )
    assert body == b"hello-from-web\n"


def test_containerd_patch_is_in_the_running_config(kind_cluster: KindCluster) -> None:
    node = kind_cluster.nodes[0]
    config = node.exec("cat", "/etc/containerd/config.toml").stdout
    assert 'config_path = "/etc/containerd/certs.d"' in config
    dumped = node.exec("containerd", "config", "dump").stdout
    assert "/etc/containerd/certs.d" in dumped


def test_port_forward_survives_concurrent_connections(kind_cluster: KindCluster, web: str) -> None:
    with kind_cluster.port_forward("svc/web", 80, namespace=NAMESPACE) as port:

        def get(_: int) -> bytes:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=30) as r:
                body: bytes = r.read()
            return body

        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            bodies = list(pool.map(get, range(36)))
    assert bodies == [b"hello-from-web\n"] * 36
