"""The fixtures: thin wrappers around :class:`~pytest_kindcluster.KindCluster`."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client as k8s_client

from pytest_kindcluster.cluster.base import ClusterBase
from pytest_kindcluster.cluster.existing import ExistingCluster
from pytest_kindcluster.cluster.health import NodeWatch
from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.coordination import (
    RUN_ID,
    owner_pid,
    share_dir,
    shared_cluster,
    worker_input,
)
from pytest_kindcluster.errors import ClusterDown, ConfigError
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.markers import MARKED_REQUESTS, ClusterRequest
from pytest_kindcluster.reporting import PROGRESS
from pytest_kindcluster.runtime import connect_engine
from pytest_kindcluster.runtime.base import Engine
from pytest_kindcluster.settings import FAILED_KIND_TESTS, SETTINGS, Settings

# The session's marked clusters, by name (default cluster apart).
MARKED_CLUSTERS = pytest.StashKey[dict[str, KindCluster]]()
NODE_WATCHES = pytest.StashKey[dict[str, NodeWatch]]()

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
    return connect_engine()


@pytest.fixture(scope="session")
def kind_cluster(
    request: pytest.FixtureRequest, kind_settings: Settings, kind_runtime: Engine
) -> Iterator[ClusterBase]:
    """A ready cluster for the session (pytest-kind's name and API); deleted afterwards.

    Ready means /readyz, every node Ready, CoreDNS available and the default ServiceAccount
    present. Kept instead when ``--kind-retain`` or ``--kind-reuse`` says so. A module or class
    marked ``@pytest.mark.kind_cluster(config=..., name=...)`` gets its own cluster instead
    (created once per session); with ``--kind-kubeconfig`` it is that existing cluster.
    """
    s = kind_settings
    marked: ClusterRequest | None = getattr(request, "param", None)
    progress = request.config.stash[PROGRESS]
    if s.kubeconfig is not None:
        if marked is not None:
            raise ConfigError(
                f"{marked.origin}: @pytest.mark.kind_cluster asks for its own cluster, but "
                "--kind-kubeconfig runs against an existing one and creates none"
            )
        existing = ExistingCluster(s.kubeconfig, timeout=s.timeout, progress=progress).create()
        yield existing
        existing.close()
        return
    share = share_dir(request.config)
    name = marked.name if marked else s.name
    config = marked.config if marked else s.cluster_config

    def make(attach: bool) -> KindCluster:
        # Under xdist every worker keeps its kubeconfig in the run's shared directory.
        worker = worker_input(request.config) or {}
        kubeconfig = (
            share / name / str(worker.get("workerid", "main")) / "kubeconfig" if share else None
        )
        return KindCluster(
            name,
            image=s.image,
            workers=0 if config else s.workers,
            config=config,
            timeout=s.timeout,
            retain=s.retain,
            reuse=s.reuse or attach,
            logs_dir=s.logs_dir,
            kubeconfig=kubeconfig,
            runtime=kind_runtime,
            images=kind_runtime,
            progress=progress,
            run_id=request.config.stash[RUN_ID],
            owner_pid=owner_pid(request.config),
            snapshot=s.snapshot,
        )

    if share is not None:
        # One cluster per run: the controller deletes it once every worker is done.
        where = share / name if marked else share
        where.mkdir(parents=True, exist_ok=True)
        cluster = shared_cluster(where, make, budget=s.timeout + CREATE_BUDGET)
        yield cluster
        cluster.detach()
        return
    if marked is not None:
        # Marked clusters live until the session ends, however pytest orders their tests.
        yield marked_cluster(request.config, name, lambda: make(False).create())
        return
    if any_marked(request.config):
        # pytest tears a parametrized session fixture down whenever the parameter changes;
        # with marked clusters in the session, the default one must outlive that too.
        yield marked_cluster(request.config, name, lambda: make(False).create())
        return
    cluster = make(False).create()
    yield cluster
    failed = request.config.stash[FAILED_KIND_TESTS] > 0
    cluster.close(failed=failed, export_logs=s.export_logs_after(failed))


def any_marked(config: pytest.Config) -> bool:
    """Whether any collected test asked for a marked cluster."""
    registry = config.stash.get(MARKED_REQUESTS, None)
    return bool(registry and registry.requests)


def marked_cluster(
    config: pytest.Config, name: str, create: Callable[[], KindCluster]
) -> KindCluster:
    """The marked cluster ``name``, created on first use and closed when pytest ends."""
    clusters = config.stash.setdefault(MARKED_CLUSTERS, {})
    if name not in clusters:
        cluster = clusters[name] = create()
        settings = config.stash[SETTINGS]

        def close() -> None:
            failed = config.stash[FAILED_KIND_TESTS] > 0
            cluster.close(failed=failed, export_logs=settings.export_logs_after(failed))

        config.add_cleanup(close)
    return clusters[name]


@pytest.fixture(autouse=True)
def _kind_nodes_running(request: pytest.FixtureRequest) -> None:
    """Before each test on a cluster: if a node container stopped, fail now, logs exported."""
    if "kind_cluster" not in request.fixturenames:
        return
    cluster = request.getfixturevalue("kind_cluster")
    if not isinstance(cluster, KindCluster):  # an existing cluster, or a test's own stand-in
        return
    watches = request.config.stash.setdefault(NODE_WATCHES, {})
    if cluster.name not in watches:
        watches[cluster.name] = NodeWatch(
            cluster.name,
            lambda: cluster.nodes,
            cluster.export_logs,
            logs_dir=request.config.stash[SETTINGS].logs_dir,
            progress=request.config.stash[PROGRESS],
        )
    try:
        watches[cluster.name].check()
    except ClusterDown as exc:
        failure = str(exc)
    else:
        return
    pytest.fail(failure, pytrace=False)  # outside the except: no chained traceback to read past


@pytest.fixture(scope="session")
def kind_client(kind_cluster: ClusterBase) -> Any:
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
