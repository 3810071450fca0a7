"""The fixtures: thin wrappers around :class:`~pytest_kindcluster.KindCluster`."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s_client

from pytest_kindcluster import readiness
from pytest_kindcluster.cluster import KindCluster
from pytest_kindcluster.coordination import share_dir, shared_cluster, worker_input
from pytest_kindcluster.reporting import PROGRESS
from pytest_kindcluster.runtime.base import Engine
from pytest_kindcluster.runtime.docker import DockerRuntime
from pytest_kindcluster.settings import FAILED_KIND_TESTS, SETTINGS, Settings

# Seconds a worker waits for another worker to finish creating the cluster, on top of the
# readiness budget: node creation and kubeadm take about a minute on a small machine.
CREATE_BUDGET = 600.0


@pytest.fixture(scope="session")
def kind_settings(pytestconfig: pytest.Config) -> Settings:
    """The resolved ``--kind-*`` settings; override to compute them in a conftest."""
    return pytestconfig.stash[SETTINGS]


@pytest.fixture(scope="session")
def kind_runtime() -> Engine:
    """The container engine clusters are made with: Docker, from ``DOCKER_HOST`` or the socket.

    Override it to point the plugin at another engine (anything satisfying ``NodeRuntime`` and
    ``HostImages``). An unreachable engine is an error here, never a skip.
    """
    return DockerRuntime()


@pytest.fixture(scope="session")
def kind_cluster(
    request: pytest.FixtureRequest, kind_settings: Settings, kind_runtime: Engine
) -> Iterator[KindCluster]:
    """A ready cluster for the session (pytest-kind's name and API); deleted afterwards.

    Ready means /readyz, every node Ready, CoreDNS available and the default ServiceAccount
    present. Kept instead when ``--kind-retain`` or ``--kind-reuse`` says so.
    """
    s = kind_settings
    share = share_dir(request.config)

    def make(attach: bool) -> KindCluster:
        # Under xdist every worker keeps its kubeconfig in the run's shared directory.
        worker = worker_input(request.config) or {}
        kubeconfig = share / str(worker.get("workerid", "main")) / "kubeconfig" if share else None
        return KindCluster(
            s.name,
            image=s.image,
            workers=s.workers,
            timeout=s.timeout,
            retain=s.retain,
            reuse=s.reuse or attach,
            logs_dir=s.logs_dir,
            kubeconfig=kubeconfig,
            runtime=kind_runtime,
            images=kind_runtime,
            progress=request.config.stash[PROGRESS],
        )

    if share is not None:
        # One cluster per run: the controller deletes it once every worker is done.
        cluster = shared_cluster(share, make, budget=s.timeout + CREATE_BUDGET)
        yield cluster
        cluster.detach()
        return
    cluster = make(False).create()
    yield cluster
    failed = request.config.stash[FAILED_KIND_TESTS] > 0
    cluster.close(failed=failed, export_logs=s.export_logs_after(failed))


@pytest.fixture(scope="session")
def kind_client(kind_cluster: KindCluster) -> Any:
    """A ``kubernetes.client.ApiClient`` for the session's cluster."""
    return kind_cluster.api_client


@pytest.fixture
def kind_namespace(request: pytest.FixtureRequest, kind_client: Any) -> Iterator[str]:
    """The name of a fresh namespace (with its default ServiceAccount), deleted after the test."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug or 'test'}-{secrets.token_hex(3)}"
    core = k8s_client.CoreV1Api(kind_client)
    core.create_namespace(
        k8s_client.V1Namespace(
            metadata=k8s_client.V1ObjectMeta(
                name=name, labels={"app.kubernetes.io/managed-by": "pytest-kindcluster"}
            )
        )
    )
    # Pods are refused until the namespace's default ServiceAccount exists.
    readiness.wait_service_account(kind_client, name, timeout=60)
    yield name
    # The test may have deleted it already; deleting a missing namespace would fail teardown.
    if core.list_namespace(field_selector=f"metadata.name={name}").items:
        core.delete_namespace(name, propagation_policy="Background")
