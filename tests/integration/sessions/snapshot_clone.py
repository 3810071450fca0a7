"""A session on a cluster booted from a snapshot (--kind-snapshot), run by test_snapshots.py.

Everything a cold cluster offers must work. What differs, by design: the Kubernetes node names
are the snapshot's (``kc-snap-<id>-...``), kept as the nodes' hostnames, while the containers
are named after this cluster and sit on a network of its own.

With ``$KIND_SNAPSHOT_RECORD_DIR`` set, the session also records what it got and waits until
``$KIND_SNAPSHOT_PEERS`` sessions have done the same, so that concurrent clones overlap.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from io import BytesIO
from pathlib import Path
from typing import Any

import docker
import yaml
from kubernetes import client as k8s_client

from pytest_kindcluster import KindCluster
from pytest_kindcluster.util.waiting import wait_until

MARKER = "clone-marker"
HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 8080 -h /www"
# The name is absolute (a final dot): until CoreDNS has seen the new Service, a relative name
# would go on through the host's search domains, and some resolver may answer for those.
GET = (
    "for i in $(seq 30); do wget -qO- http://web.{namespace}.svc.cluster.local./ && exit 0; "
    "sleep 2; done; exit 1"
)


def test_names_inside_are_the_snapshots_and_outside_this_clusters(
    kind_cluster: KindCluster, kind_client: Any
) -> None:
    engine = docker.from_env()
    core: Any = k8s_client.CoreV1Api(kind_client)
    kube_nodes = {n.metadata.name: n for n in core.list_node().items}
    network = f"kindcluster-{kind_cluster.name}"
    for node in kind_cluster.nodes:
        assert node.name.startswith(f"{kind_cluster.name}-")
        attrs = engine.api.inspect_container(node.name)
        hostname = attrs["Config"]["Hostname"]
        assert hostname.startswith("kc-snap-")
        assert hostname in kube_nodes  # the Kubernetes node is the snapshot's
        assert node.name.removeprefix(f"{kind_cluster.name}-") == hostname.split("-", 3)[3]
        assert list(attrs["NetworkSettings"]["Networks"]) == [network]
        assert hostname in attrs["NetworkSettings"]["Networks"][network]["Aliases"]
        address = attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        internal = [
            a.address for a in kube_nodes[hostname].status.addresses if a.type == "InternalIP"
        ]
        assert internal == [address]  # the node IP was rewritten to the new address
    for node in kube_nodes.values():
        ready = next(c for c in node.status.conditions if c.type == "Ready")
        assert ready.status == "True"
    labels = engine.api.inspect_network(network)["Labels"]
    assert labels["io.x-k8s.kind.cluster"] == kind_cluster.name


def test_kubeconfig_points_at_this_clusters_port(kind_cluster: KindCluster) -> None:
    doc = yaml.safe_load(Path(kind_cluster.kubeconfig_path).read_text())
    assert doc["current-context"] == f"kind-{kind_cluster.name}"
    engine = docker.from_env()
    ports = engine.api.inspect_container(f"{kind_cluster.name}-control-plane")["NetworkSettings"][
        "Ports"
    ]
    port = ports["6443/tcp"][0]["HostPort"]
    assert doc["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{port}"


def test_kubectl_and_a_namespace(
    kind_cluster: KindCluster, kind_namespace: str, kind_client: Any
) -> None:
    assert kind_cluster.kubectl("get", "nodes", "-o", "name").count("node/kc-snap-") == len(
        kind_cluster.nodes
    )
    kind_cluster.apply(
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata: {{name: marker, namespace: {kind_namespace}}}\ndata: {{owner: me}}\n"
    )
    core: Any = k8s_client.CoreV1Api(kind_client)
    assert core.read_namespaced_config_map("marker", kind_namespace).data == {"owner": "me"}


def test_service_dns_and_pod_traffic_across_nodes(
    kind_cluster: KindCluster, kind_namespace: str, kind_client: Any
) -> None:
    """A web pod behind a Service, reached by name from a pod (on another node when there are
    workers): DNS, kube-proxy and the routes between nodes all work after the restore."""
    workers = len(kind_cluster.nodes) > 1
    anti = (
        "  affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: "
        "[{labelSelector: {matchLabels: {app: web}}, topologyKey: kubernetes.io/hostname}]}}"
        if workers
        else ""
    )
    kind_cluster.apply(
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: {kind_namespace}, labels: {{app: web}}}}
spec:
  containers:
  - name: httpd
    image: busybox:1.36
    imagePullPolicy: Never
    command: [sh, -c, "{HTTPD.format(text="hello")}"]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {kind_namespace}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: {kind_namespace}, labels: {{app: client}}}}
spec:
  restartPolicy: Never
{anti}
  containers:
  - name: get
    image: busybox:1.36
    imagePullPolicy: Never
    # Routes to other nodes' pod subnets arrive over BGP a few seconds after the nodes turn
    # Ready (as on a cold cluster): retry for a minute.
    command: [sh, -c, "{GET.format(namespace=kind_namespace)}"]
"""
    )
    core: Any = k8s_client.CoreV1Api(kind_client)

    def finished() -> str | None:
        phase = core.read_namespaced_pod("client", kind_namespace).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_until(finished, what="pod client", timeout=180, interval=1) == "Succeeded"
    assert core.read_namespaced_pod_log("client", kind_namespace).endswith("hello\n")
    if workers:
        web = core.read_namespaced_pod("web", kind_namespace).spec.node_name
        client = core.read_namespaced_pod("client", kind_namespace).spec.node_name
        assert web != client


def test_load_docker_image_then_a_pod_runs_it(
    kind_cluster: KindCluster, kind_namespace: str, kind_client: Any
) -> None:
    engine = docker.from_env()
    token = uuid.uuid4().hex[:8]
    tag = f"kindcluster-test/hello:{token}"
    dockerfile = f'FROM busybox:1.36\nRUN echo hello-{token} > /hello\nCMD ["cat", "/hello"]\n'
    engine.images.build(fileobj=BytesIO(dockerfile.encode()), tag=tag, rm=True, pull=False)
    try:
        loaded = kind_cluster.load_docker_image(tag)
        assert sorted(loaded) == sorted(n.name for n in kind_cluster.nodes)
        kind_cluster.apply(
            f"""
apiVersion: v1
kind: Pod
metadata: {{name: hello, namespace: {kind_namespace}}}
spec:
  restartPolicy: Never
  containers:
  - {{name: hello, image: {tag}, imagePullPolicy: Never}}
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


def test_port_forward_to_a_pod(kind_cluster: KindCluster, kind_namespace: str) -> None:
    kind_cluster.apply(
        f"""
apiVersion: v1
kind: Pod
metadata: {{name: forwarded, namespace: {kind_namespace}}}
spec:
  containers:
  - name: httpd
    image: busybox:1.36
    imagePullPolicy: Never
    command: [sh, -c, "{HTTPD.format(text="forwarded")}"]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
"""
    )
    kind_cluster.kubectl(
        "wait", "-n", kind_namespace, "pod/forwarded", "--for=condition=Ready", "--timeout=120s"
    )
    with kind_cluster.port_forward("pod/forwarded", 8080, namespace=kind_namespace) as port:
        url = f"http://127.0.0.1:{port}/index.html"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.read() == b"forwarded\n"


def test_export_logs(kind_cluster: KindCluster, tmp_path: Path) -> None:
    dest = kind_cluster.export_logs(tmp_path / "logs")
    node_dir = dest / f"{kind_cluster.name}-control-plane"
    assert "Multi-User System" in (node_dir / "serial.log").read_text()
    assert "kubelet" in (node_dir / "kubelet.log").read_text()
    assert not (dest / "export-errors.txt").exists()


def test_zz_record_and_meet_the_other_clones(kind_cluster: KindCluster, kind_client: Any) -> None:
    """Runs last. A ConfigMap of the same name in every clone, each with its own owner: had
    two clones shared anything, one would see the other's (or fail to create its own)."""
    record_dir = os.environ.get("KIND_SNAPSHOT_RECORD_DIR")
    if not record_dir:
        return
    core: Any = k8s_client.CoreV1Api(kind_client)
    core.create_namespaced_config_map(
        "default",
        k8s_client.V1ConfigMap(
            metadata=k8s_client.V1ObjectMeta(name=MARKER), data={"owner": kind_cluster.name}
        ),
    )
    engine = docker.from_env()
    attrs = engine.api.inspect_container(f"{kind_cluster.name}-control-plane")
    record = {
        "name": kind_cluster.name,
        "networks": sorted(attrs["NetworkSettings"]["Networks"]),
        "port": attrs["NetworkSettings"]["Ports"]["6443/tcp"][0]["HostPort"],
        "kubeconfig": str(kind_cluster.kubeconfig_path),
        "hostname": attrs["Config"]["Hostname"],
    }
    Path(record_dir, f"{kind_cluster.name}.json").write_text(json.dumps(record))
    peers = int(os.environ.get("KIND_SNAPSHOT_PEERS", "1"))
    deadline = time.monotonic() + 600
    while len(list(Path(record_dir).glob("*.json"))) < peers:
        assert time.monotonic() < deadline, "the other sessions never got their clusters"
        time.sleep(1)
    # Every clone is up now; each still sees only its own marker.
    markers = core.list_namespaced_config_map("default", field_selector=f"metadata.name={MARKER}")
    assert [m.data for m in markers.items] == [{"owner": kind_cluster.name}]
