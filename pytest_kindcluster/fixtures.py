"""The fixtures: thin wrappers around :class:`~pytest_kindcluster.KindCluster`."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_kindcluster.coordination import (
    RUN_ID,
    owner_pid,
    share_dir,
    shared_cluster,
    worker_input,
)
from pytest_kindcluster.errors import ClusterDown, ConfigError, RuntimeUnavailable
from pytest_kindcluster.markers import MARKED_REQUESTS, ClusterRequest
from pytest_kindcluster.reporting import PROGRESS
from pytest_kindcluster.runtime import connect_engine
from pytest_kindcluster.settings import FAILED_KIND_TESTS, SETTINGS, Settings
from pytest_kindcluster.signals import TERMINATION

# The cluster lifecycle (and through it the Kubernetes client) is imported when a fixture first
# needs it: pytest registers this module in every session, most of which never make a cluster.
if TYPE_CHECKING:
    from pytest_kindcluster.cluster.base import ClusterBase
    from pytest_kindcluster.cluster.health import NodeWatch
    from pytest_kindcluster.cluster.lifecycle import KindCluster
    from pytest_kindcluster.runtime.base import Engine

# The session's marked clusters, by name (default cluster apart).
MARKED_CLUSTERS: pytest.StashKey[dict[str, KindCluster]] = pytest.StashKey()
NODE_WATCHES: pytest.StashKey[dict[str, NodeWatch]] = pytest.StashKey()
# Clusters whose namespace leftovers this session has swept already.
SWEPT: pytest.StashKey[set[str]] = pytest.StashKey()
Made = TypeVar("Made")

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
def kind_cluster(request: pytest.FixtureRequest, kind_settings: Settings) -> Iterator[ClusterBase]:
    """A ready cluster for the session (pytest-kind's name and API); deleted afterwards.

    Ready means /readyz, every node Ready, CoreDNS available and the default ServiceAccount
    present. Kept instead when ``--kind-retain`` or ``--kind-reuse`` says so. A module or class
    marked ``@pytest.mark.kind_cluster(config=..., name=...)`` gets its own cluster instead
    (created once per session); with ``--kind-kubeconfig`` it is that existing cluster.
    """
    from pytest_kindcluster.cluster.existing import ExistingCluster  # noqa: PLC0415 - see top
    from pytest_kindcluster.cluster.lifecycle import KindCluster  # noqa: PLC0415 - see top

    s = kind_settings
    marked: ClusterRequest | None = getattr(request, "param", None)
    progress = request.config.stash[PROGRESS]
    guard = request.config.stash[TERMINATION]
    if s.kubeconfig is not None:
        if marked is not None:
            raise ConfigError(
                f"{marked.origin}: @pytest.mark.kind_cluster asks for its own cluster, but "
                "--kind-kubeconfig runs against an existing one and creates none"
            )
        existing = ExistingCluster(
            s.kubeconfig,
            context=s.context,
            timeout=s.timeout,
            progress=progress,
            images=optional_engine(request),
            image=s.image,
        ).create()
        yield existing
        existing.close()
        return
    # Requested here, not as an argument: an existing cluster needs no engine at all.
    kind_runtime: Engine = request.getfixturevalue("kind_runtime")
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
        shared = owned(
            request.config,
            name,
            lambda: shared_cluster(where, make, budget=s.timeout + CREATE_BUDGET),
        )
        try:
            yield shared
        finally:
            try:
                shared.detach()
            finally:
                guard.release(name)
        return
    if marked is not None:
        # Marked clusters live until the session ends, however pytest orders their tests.
        yield marked_cluster(request.config, s, name, lambda: make(False).create())
        return
    if any_marked(request.config):
        # pytest tears a parametrized session fixture down whenever the parameter changes;
        # with marked clusters in the session, the default one must outlive that too.
        yield marked_cluster(request.config, s, name, lambda: make(False).create())
        return
    cluster = owned(request.config, name, lambda: make(False).create())
    yield cluster
    failed = request.config.stash[FAILED_KIND_TESTS] > 0
    try:
        cluster.close(failed=failed, export_logs=s.export_logs_after(failed))
    finally:
        guard.release(name)


def owned(config: pytest.Config, name: str, create: Callable[[], Made]) -> Made:
    """Create a cluster as the session's own: the signal handlers hold from now until release.

    A failed create releases at once. If a first signal was held back while the failed create
    rolled back, the session stops here, as it would have had the signal come a moment earlier.
    """
    guard = config.stash[TERMINATION]
    guard.acquire(name)
    try:
        return create()
    except BaseException:
        guard.release(name)
        guard.raise_pending()
        raise


def optional_engine(request: pytest.FixtureRequest) -> Engine | None:
    """``kind_runtime`` if an engine answers: only for the kubectl of the default node image."""
    try:
        engine: Engine = request.getfixturevalue("kind_runtime")
    except RuntimeUnavailable:
        return None
    return engine


def any_marked(config: pytest.Config) -> bool:
    """Whether any collected test asked for a marked cluster."""
    registry = config.stash.get(MARKED_REQUESTS, None)
    return bool(registry and registry.requests)


def marked_cluster(
    config: pytest.Config, settings: Settings, name: str, create: Callable[[], KindCluster]
) -> KindCluster:
    """The marked cluster ``name``, created on first use and closed when pytest ends."""
    clusters = config.stash.setdefault(MARKED_CLUSTERS, {})
    if name not in clusters:
        cluster = clusters[name] = owned(config, name, create)

        def close() -> None:
            failed = config.stash[FAILED_KIND_TESTS] > 0
            try:
                cluster.close(failed=failed, export_logs=settings.export_logs_after(failed))
            finally:
                config.stash[TERMINATION].release(name)

        config.add_cleanup(close)
    return clusters[name]


@pytest.fixture(autouse=True)
def _kind_nodes_running(request: pytest.FixtureRequest) -> None:
    """Before each test on a cluster: if a node container stopped, fail now, logs exported."""
    if "kind_cluster" not in request.fixturenames:
        return
    from pytest_kindcluster.cluster.health import NodeWatch  # noqa: PLC0415 - see top
    from pytest_kindcluster.cluster.lifecycle import KindCluster  # noqa: PLC0415 - see top

    cluster = request.getfixturevalue("kind_cluster")
    if not isinstance(cluster, KindCluster):  # an existing cluster, or a test's own stand-in
        return
    watches = request.config.stash.setdefault(NODE_WATCHES, {})
    if cluster.name not in watches:
        watches[cluster.name] = NodeWatch(
            cluster.name,
            lambda: cluster.nodes,
            cluster.export_logs,
            logs_dir=request.getfixturevalue("kind_settings").logs_dir,
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
def kind_namespace(
    request: pytest.FixtureRequest, kind_cluster: ClusterBase, kind_client: Any
) -> Iterator[str]:
    """The name of a fresh namespace (with its default ServiceAccount), deleted after the test.

    It needs only the right to create and delete namespaces. The first one of a session on a
    cluster also deletes the namespaces crashed runs left there (see ``cluster/namespaces.py``).
    """
    from pytest_kindcluster.cluster import namespaces as test_namespaces  # noqa: PLC0415
    from pytest_kindcluster.cluster.ownership import Owner  # noqa: PLC0415 - see top
    from pytest_kindcluster.kube import namespaces, readiness  # noqa: PLC0415 - see top

    swept = request.config.stash.setdefault(SWEPT, set())
    if kind_cluster.name not in swept:
        swept.add(kind_cluster.name)
        found = test_namespaces.sweep(kind_client, request.config.stash[RUN_ID])
        for line in found.lines():
            request.config.stash[PROGRESS].note(kind_cluster.name, line)
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{slug or 'test'}-{secrets.token_hex(3)}"
    owner = Owner.of(owner_pid(request.config))
    labels, annotations = test_namespaces.metadata(owner, request.config.stash[RUN_ID])
    namespaces.create(kind_client, name, labels, annotations)
    # Pods are refused until the namespace's default ServiceAccount exists.
    readiness.wait_service_account(kind_client, name, timeout=60)
    yield name
    namespaces.delete(kind_client, name)  # already gone (the test deleted it) is fine
