"""A session that reuses a retained cluster, run by test_sessions.py."""

from __future__ import annotations

from pytest_kindcluster import KindCluster


def test_reused_cluster_is_the_same_and_ready(kind_cluster: KindCluster) -> None:
    assert kind_cluster.reused
    assert kind_cluster.kubectl("get", "nodes", "-o", "name").strip() == (
        f"node/{kind_cluster.name}-control-plane"
    )
