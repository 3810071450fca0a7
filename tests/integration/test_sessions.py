"""Real clusters, end to end: whole pytest sessions, the library API, and every failure path.

One cluster exists at a time: each test creates its cluster and removes it before the next.
"""

from __future__ import annotations

import hashlib
import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import docker
import pytest
from kubernetes import client as k8s_client

from pytest_kindcluster import ImageError, KindCluster, ReadinessTimeout
from pytest_kindcluster.util.waiting import wait_until
from tests.support import run_session, unique

pytestmark = pytest.mark.integration

KUBECONFIG = Path.home() / ".kube" / "config"


def user_kubeconfig_state() -> str:
    return hashlib.sha256(KUBECONFIG.read_bytes()).hexdigest() if KUBECONFIG.exists() else "absent"


def test_single_node_session_then_reuse_leaves_nothing_behind(
    pytester: pytest.Pytester, node_image: str, leftovers: Any
) -> None:
    name = unique("it-single")
    kubeconfig_before = user_kubeconfig_state()
    try:
        result = run_session(
            pytester, "single_node.py", f"--kind-name={name}", "--kind-retain=always"
        )
        result.assert_outcomes(passed=8)
        result.stdout.fnmatch_lines(
            [
                f"kind {name}: kubeadm-init *s",
                f"kind {name}: ready *s",
                f"kind {name}: ready in *s",
                f"kind {name}: kept (retain=always); kubeconfig: *",
            ]
        )
        assert leftovers(name)["containers"] == [f"{name}-control-plane"]

        reused = run_session(pytester, "reuse.py", f"--kind-name={name}", "--kind-reuse")
        reused.assert_outcomes(passed=1)
        reused.stdout.fnmatch_lines([f"kind {name}: reused and ready in *s"])
        assert "kubeadm-init" not in reused.stdout.str()
    finally:
        KindCluster(name).delete()
    assert leftovers(name) == {"containers": [], "volumes": []}
    assert user_kubeconfig_state() == kubeconfig_before


def test_one_plus_two_workers_as_a_context_manager(
    docker_client: docker.DockerClient,
    node_image: str,
    leftovers: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = unique("it-multi")
    caplog.set_level(logging.DEBUG, logger="pytest_kindcluster.provision.kubeadm")
    with KindCluster(name, workers=2) as cluster:
        assert [(n.name, n.role) for n in cluster.nodes] == [
            (f"{name}-control-plane", "control-plane"),
            (f"{name}-worker", "worker"),
            (f"{name}-worker2", "worker"),
        ]
        core: Any = k8s_client.CoreV1Api(cluster.api_client)
        nodes = core.list_node().items
        assert len(nodes) == 3
        for node in nodes:
            assert next(c for c in node.status.conditions if c.type == "Ready").status == "True"
        phases = [t.name for t in cluster.timings]
        assert phases[phases.index("kubeadm-init") + 1] == "join"
        # The CNI and storage went in while kubeadm init was finishing, not after it.
        assert f"kind {name}: add-ons applied during kubeadm init" in caplog.messages
        assert not [p for p in phases if "untaint" in p]  # workers take the workloads
        # Workloads land on the workers, and DNS works from there.
        cluster.apply(
            """
apiVersion: batch/v1
kind: Job
metadata: {name: dns-check, namespace: default}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: check
        image: busybox:1.36
        imagePullPolicy: Never
        # Routes to other nodes' pod subnets arrive over BGP a few seconds after the node
        # turns Ready (a known gap in readiness): retry for a minute, then fail.
        command:
        - sh
        - -c
        - >-
          for i in $(seq 30); do nslookup kubernetes.default.svc.cluster.local && exit 0;
          sleep 2; done; exit 1
"""
        )
        batch: Any = k8s_client.BatchV1Api(cluster.api_client)

        def done() -> str | None:
            status = batch.read_namespaced_job("dns-check", "default").status
            return "ok" if status.succeeded else ("failed" if status.failed else None)

        assert wait_until(done, what="dns-check job", timeout=120, interval=1) == "ok"
        (pod,) = core.list_namespaced_pod("default", label_selector="job-name=dns-check").items
        assert pod.spec.node_name in (f"{name}-worker", f"{name}-worker2")
        mounts = [
            m for n in cluster.nodes for m in docker_client.api.inspect_container(n.name)["Mounts"]
        ]
        volumes = [m["Name"] for m in mounts if m["Type"] == "volume"]
        assert sum(m["Destination"] == "/var" for m in mounts if m["Type"] == "volume") == 3
        kubeconfig = cluster.kubeconfig_path
    assert leftovers(name) == {"containers": [], "volumes": []}
    remaining = {v.name for v in docker_client.volumes.list()}
    assert not remaining & set(volumes)
    assert not kubeconfig.exists()


def test_xdist_workers_share_one_cluster_and_the_controller_deletes_it(
    pytester: pytest.Pytester,
    node_image: str,
    leftovers: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = unique("it-xdist")
    monkeypatch.setenv("KIND_XDIST_RECORD_DIR", str(tmp_path))
    result = run_session(
        pytester, "xdist_shared.py", f"--kind-name={name}", "-n", "2", "--junitxml=report.xml"
    )
    result.assert_outcomes(passed=4)
    records = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert len(records) == 4
    assert {r["worker"] for r in records} == {"gw0", "gw1"}
    assert {r["cluster"] for r in records} == {name}
    creators = {r["worker"] for r in records if not r["attached"]}
    assert len(creators) == 1  # one worker created it, the other attached
    result.stdout.fnmatch_lines(
        [
            "*= kind clusters =*",
            f"kind {name}: preflight *s, *, ready *s",
            f"kind {name}: ready in *s (created by an xdist worker)",
            f"kind {name}: deleted",
        ]
    )
    # The controller writes the JUnit report, with the phases the creating worker recorded.
    suite = ET.parse(pytester.path / "report.xml").getroot().find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.iterfind("properties/property")}
    assert float(props[f"kind.{name}.time_to_ready"] or "0") > 0
    assert float(props[f"kind.{name}.phase.kubeadm-init"] or "0") > 0
    assert leftovers(name) == {"containers": [], "volumes": []}


def test_readiness_timeout_fails_with_each_checks_state_and_logs(
    node_image: str, tmp_path: Path, leftovers: Any
) -> None:
    name = unique("it-timeout")
    cluster = KindCluster(name, timeout=1, logs_dir=tmp_path)
    with pytest.raises(ReadinessTimeout) as info:
        cluster.create()
    error = info.value
    assert set(error.last_state) == {
        "apiserver /readyz",
        "nodes Ready",
        "CoreDNS available",
        "default ServiceAccount",
    }
    assert error.logs_dir == str(tmp_path / name)
    assert (tmp_path / name / f"{name}-control-plane" / "kubelet.log").stat().st_size > 0
    assert "logs exported to" in str(error)
    assert leftovers(name) == {"containers": [], "volumes": []}


def test_missing_node_image_is_an_error_not_a_skip(
    pytester: pytest.Pytester, leftovers: Any
) -> None:
    name = unique("it-noimage")
    result = run_session(
        pytester, "missing_image.py", f"--kind-name={name}", "--kind-image=kindcluster-test/none:0"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ImageError*kindcluster-test/none:0*node-image build*"])
    with pytest.raises(ImageError):
        KindCluster(name, image="kindcluster-test/none:0").create()
    assert leftovers(name) == {"containers": [], "volumes": []}
