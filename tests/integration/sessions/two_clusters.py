"""The default cluster and a marked class's own cluster in one session (test_kind_config.py).

The marked class's cluster has no CNI (disableDefaultCNI): its nodes wait for one until the test
installs the node image's own, which proves the cluster was left for the user to complete.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from kubernetes import client as k8s_client

from pytest_kindcluster import KindCluster
from pytest_kindcluster.provision.addons import CNI_MANIFEST, render_cni_manifest
from pytest_kindcluster.util.waiting import wait_until

NAMES: dict[str, str] = {}
# The outer test names the marked cluster, so it can check that the session deleted it.
MARKED = os.environ["KIND_IT_MARKED_NAME"]


def ready(kind_client: Any) -> list[str]:
    core: Any = k8s_client.CoreV1Api(kind_client)
    return [
        c.status
        for node in core.list_node().items
        for c in node.status.conditions
        if c.type == "Ready"
    ]


def test_default_cluster_first(kind_cluster: KindCluster) -> None:
    NAMES["default"] = kind_cluster.name


@pytest.mark.kind_cluster(config="configs/no-cni.yaml", name=MARKED)
class TestWithoutDefaultCNI:
    def test_nodes_wait_for_a_network_plugin(
        self, kind_cluster: KindCluster, kind_client: Any
    ) -> None:
        assert kind_cluster.name == MARKED != NAMES["default"]
        assert ready(kind_client) == ["False"]
        node = kind_cluster.nodes[0]
        assert node.exec("ls", "/etc/cni/net.d").stdout.strip() == ""
        assert (
            kind_cluster.kubectl("get", "daemonsets", "-n", "kube-system", "-o", "name").find(
                "kube-router"
            )
            == -1
        )

    def test_installing_a_cni_makes_it_usable(
        self, kind_cluster: KindCluster, kind_client: Any
    ) -> None:
        assert kind_cluster.name == MARKED  # the same cluster for the whole class
        node = kind_cluster.nodes[0]
        manifest = render_cni_manifest(
            node.exec("cat", CNI_MANIFEST).stdout,
            pod_subnet="10.244.0.0/16",
            control_plane_endpoint=f"{kind_cluster.name}-control-plane:6443",
        )
        kind_cluster.apply(manifest)
        wait_until(
            lambda: ready(kind_client) == ["True"] or None,
            what="the node to become Ready once a CNI runs",
            timeout=120,
        )


def test_default_cluster_again(kind_cluster: KindCluster) -> None:
    assert kind_cluster.name == NAMES["default"]
