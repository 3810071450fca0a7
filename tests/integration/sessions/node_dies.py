"""A node container dies mid-session; the tests after it must fail clearly (test_bad_input.py)."""

from __future__ import annotations

from typing import Any

import docker
from kubernetes import client as k8s_client

from pytest_kindcluster import KindCluster


def test_1_cluster_works(kind_cluster: KindCluster) -> None:
    assert kind_cluster.kubectl("get", "nodes", "-o", "name")


def test_2_the_control_plane_dies(kind_cluster: KindCluster) -> None:
    engine = docker.from_env()
    engine.containers.get(f"{kind_cluster.name}-control-plane").kill()  # SIGKILL, as the OOM killer
    engine.close()


def test_3_after_the_death(kind_client: Any) -> None:
    k8s_client.CoreV1Api(kind_client).list_node()


def test_4_after_the_death_too(kind_cluster: KindCluster, kind_namespace: str) -> None:
    raise AssertionError("must not run: the fixture check fails first")
