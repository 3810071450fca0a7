"""A session against an existing cluster through a cloud-style TOKEN kubeconfig whose
credentials may only create and delete namespaces; run by test_existing_cloud.py.

Each test writes what it saw to ``$KIND_RECORD_DIR`` so the outer test can check that the
namespaces are gone and that nothing else was left.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from pytest_kindcluster.cluster.base import ClusterBase
from pytest_kindcluster.errors import CommandFailed, ExistingClusterError

CONTEXT = os.environ["KIND_CLOUD_CONTEXT"]


def record(name: str, data: dict[str, Any]) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = Path(os.environ["KIND_RECORD_DIR"]) / f"{name}-{worker}.json"
    path.write_text(json.dumps({"worker": worker, **data}))


@pytest.mark.parametrize("n", range(4))
def test_each_test_gets_a_namespace_with_create_only_rights(
    kind_namespace: str, kind_client: Any, n: int
) -> None:
    record(f"ns{n}", {"namespace": kind_namespace})
    core: Any = k8s_client.CoreV1Api(kind_client)
    with pytest.raises(ApiException) as info:  # these credentials may not even read it
        core.read_namespace(kind_namespace)
    assert info.value.status == 403


def test_the_cluster_is_named_as_the_cloud_names_it(kind_cluster: ClusterBase) -> None:
    assert kind_cluster.name == CONTEXT


def test_kubectl_runs_on_the_host_with_the_token(kind_cluster: ClusterBase) -> None:
    assert kind_cluster.kubectl("auth", "can-i", "create", "namespaces") == "yes\n"
    with pytest.raises(CommandFailed) as info:
        kind_cluster.kubectl("get", "nodes")
    assert "forbidden" in info.value.output
    # pytest-kind's way: the binary and the kubeconfig, in a subprocess of the test's own.
    current = subprocess.run(
        [str(kind_cluster.kubectl_path), "config", "current-context"],
        env={"KUBECONFIG": str(kind_cluster.kubeconfig_path), "HOME": os.environ["HOME"]},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert current == f"{CONTEXT}\n"
    record("kubeconfig", {"path": str(kind_cluster.kubeconfig_path)})


def test_what_needs_node_containers_is_refused(kind_cluster: ClusterBase) -> None:
    with pytest.raises(ExistingClusterError, match="existing-cluster mode"):
        kind_cluster.load_docker_image("busybox:1.36")
