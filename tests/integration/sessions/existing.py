"""A session against an existing cluster (--kind-kubeconfig), run by test_kind_config.py."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s_client

from pytest_kindcluster import KindCluster
from pytest_kindcluster.errors import KindClusterError

SEEN: list[str] = []


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_gets_its_own_namespace(
    kind_namespace: str, kind_client: Any, round_: int
) -> None:
    core: Any = k8s_client.CoreV1Api(kind_client)
    core.create_namespaced_config_map(
        kind_namespace, {"metadata": {"name": "marker"}, "data": {"round": str(round_)}}
    )
    assert [
        cm.metadata.name
        for cm in core.list_namespaced_config_map(kind_namespace).items
        if cm.metadata.name == "marker"
    ] == ["marker"]
    assert kind_namespace not in SEEN
    SEEN.append(kind_namespace)


def test_the_api_is_the_existing_clusters(kind_cluster: KindCluster, kind_client: Any) -> None:
    core: Any = k8s_client.CoreV1Api(kind_client)
    names = [n.metadata.name for n in core.list_node().items]
    assert names == [f"{kind_cluster.name}-control-plane"]


def test_loading_images_is_refused_clearly(kind_cluster: KindCluster) -> None:
    with pytest.raises(KindClusterError, match="existing-cluster mode"):
        kind_cluster.load_docker_image("busybox:1.36")
