"""kind's cluster YAML, HA, the marker and existing-cluster mode, against real clusters.

At most two clusters exist at a time (the machine has two cores); every test checks that what it
created is gone afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import docker
import pytest
from kubernetes import client as k8s_client

from pytest_kindcluster import KindCluster
from pytest_kindcluster.config import load_config
from pytest_kindcluster.contract import LOADBALANCER_IMAGE
from pytest_kindcluster.kube.kubeconfig import api_client
from pytest_kindcluster.util.waiting import wait_until
from tests.support import SESSIONS, run_session, unique

pytestmark = pytest.mark.integration

CONFIGS = SESSIONS / "configs"


def test_config_file_features_take_effect(
    pytester: pytest.Pytester, node_image: str, leftovers: Any
) -> None:
    name = unique("it-cfg")
    result = run_session(pytester, "kind_config.py", f"--kind-name={name}")
    result.assert_outcomes(passed=8)
    marked = load_config(CONFIGS / "features.yaml")
    # The module's marker made its own cluster; the session deleted it at the end.
    result.stdout.fnmatch_lines([f"kind {name}-*: ready in *s", f"kind {name}-*: deleted"])
    assert marked.networking.kube_proxy_mode == "nftables"
    created = [line.split()[1].rstrip(":") for line in result.outlines if " ready in " in line]
    assert created
    assert all(leftovers(c) == {"containers": [], "volumes": []} for c in created)


def test_marker_gives_a_class_its_own_cluster_beside_the_default(
    pytester: pytest.Pytester, node_image: str, leftovers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    default, marked = unique("it-default"), unique("it-nocni")
    monkeypatch.setenv("KIND_IT_MARKED_NAME", marked)
    result = run_session(pytester, "two_clusters.py", f"--kind-name={default}")
    result.assert_outcomes(passed=4)
    # The live lines, before the "kind clusters" summary repeats them.
    live = result.stdout.str().split(" kind clusters ")[0]
    # each distinct cluster is created once, and both are deleted at the end
    assert live.count(f"kind {default}: creating cluster") == 1
    assert live.count(f"kind {marked}: creating cluster") == 1
    for name in (default, marked):
        assert leftovers(name) == {"containers": [], "volumes": []}


def test_ha_control_planes_survive_losing_one(
    docker_client: docker.DockerClient, node_image: str, leftovers: Any
) -> None:
    docker_client.images.get(LOADBALANCER_IMAGE)  # built by `node-image build`; fail if absent
    name = unique("it-ha")
    started = time.monotonic()
    cluster = KindCluster(name, config=CONFIGS / "ha.yaml", timeout=600)
    try:
        cluster.create()
        created_in = time.monotonic() - started
        lb = f"{name}-external-load-balancer"
        assert [n.name for n in cluster.nodes] == [
            f"{name}-control-plane",
            f"{name}-control-plane2",
            f"{name}-control-plane3",
        ]
        lb_port = docker_client.api.inspect_container(lb)["NetworkSettings"]["Ports"]["6443/tcp"]
        kubeconfig = Path(cluster.kubeconfig_path).read_text()
        assert f"server: https://127.0.0.1:{lb_port[0]['HostPort']}" in kubeconfig
        client: Any = api_client(Path(cluster.kubeconfig_path))
        core: Any = k8s_client.CoreV1Api(client)
        assert len(core.list_node().items) == 3

        # Stop the first control plane, the one kubeadm init ran on.
        docker_client.containers.get(f"{name}-control-plane").stop(timeout=5)
        stopped = time.monotonic()

        def serves() -> bool | None:
            core.create_namespaced_config_map(
                "default",
                {"metadata": {"generateName": "failover-"}, "data": {"ok": "1"}},
                _request_timeout=5,
            )
            return len(core.list_node(_request_timeout=5).items) == 3 or None

        wait_until(
            serves, what="the API through the load balancer", timeout=60, retry_on=(Exception,)
        )
        print(
            f"HA: created in {created_in:.0f}s; "
            f"API served {time.monotonic() - stopped:.1f}s after the stop"
        )
        client.close()
    finally:
        cluster.delete()
    assert leftovers(name) == {"containers": [], "volumes": []}


def test_existing_cluster_mode_creates_and_deletes_nothing(
    pytester: pytest.Pytester, docker_client: docker.DockerClient, node_image: str, leftovers: Any
) -> None:
    name = unique("it-existing")
    with KindCluster(name) as cluster:
        before = leftovers(name)
        everything_before = {c.name for c in docker_client.containers.list(all=True)}
        result = run_session(
            pytester, "existing.py", f"--kind-kubeconfig={cluster.kubeconfig_path}"
        )
        result.assert_outcomes(passed=4)
        assert leftovers(name) == before  # the session deleted nothing
        assert {c.name for c in docker_client.containers.list(all=True)} == everything_before
        core: Any = k8s_client.CoreV1Api(cluster.api_client)
        left = [
            n.metadata.name for n in core.list_namespace().items if "each-test" in n.metadata.name
        ]
        wait_until(
            lambda: not [
                n for n in core.list_namespace().items if n.metadata.name in left
                and n.status.phase != "Terminating"
            ] or None,
            what="the session's namespaces to be deleted", timeout=60,
        )  # fmt: skip
    assert leftovers(name) == {"containers": [], "volumes": []}
