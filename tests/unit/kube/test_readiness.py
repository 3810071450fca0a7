"""Readiness logic: all checks in one round, and a timeout that reports every check's state."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, ClassVar, cast

import pytest
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from pytest_kindcluster.errors import ClusterUnreachable, ReadinessTimeout
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.kube.readiness import (
    CheckResult,
    absent_ok,
    apiserver_readyz,
    existing_checks,
    probe_apiserver,
    wait_ready,
)

# The checks below are stand-ins that never touch the client.
NO_API = cast(k8s_client.ApiClient, None)


def sequence(*results: CheckResult | Exception) -> Any:
    items = list(results)

    def check(api: Any) -> CheckResult:
        item = items.pop(0) if len(items) > 1 else items[0]
        if isinstance(item, Exception):
            raise item
        return item

    return check


def test_ready_once_every_check_passes_in_the_same_round() -> None:
    checks = {
        "a": sequence(CheckResult(False, "no"), CheckResult(True, "ok")),
        "b": sequence(CheckResult(True, "ok")),
    }
    first_ok = wait_ready(NO_API, expected_nodes=1, timeout=5, interval=0, checks=checks)
    assert set(first_ok) == {"a", "b"}


def test_a_check_that_regresses_is_not_ready() -> None:
    # b passes once, then fails: the round where a passes must see b fail, so no "ready" yet.
    checks = {
        "a": sequence(CheckResult(False, "no"), CheckResult(True, "ok")),
        "b": sequence(CheckResult(True, "ok"), CheckResult(False, "regressed")),
    }
    with pytest.raises(ReadinessTimeout) as info:
        wait_ready(NO_API, expected_nodes=1, timeout=0.3, interval=0.05, checks=checks)
    assert info.value.last_state == {"a": "ok", "b": "regressed"}


def test_timeout_reports_last_state_of_each_check_and_api_errors() -> None:
    checks = {
        "apiserver /readyz": sequence(CheckResult(True, "ok")),
        "nodes Ready": sequence(CheckResult(False, "1/3 Ready; not ready: demo-worker (...)")),
        "CoreDNS available": sequence(ApiException(status=404, reason="Not Found")),
        "default ServiceAccount": sequence(ConnectionRefusedError("refused")),
    }
    with pytest.raises(ReadinessTimeout) as info:
        wait_ready(NO_API, expected_nodes=3, timeout=0.3, interval=0.05, checks=checks)
    error = info.value
    assert isinstance(error, TimeoutError)
    assert error.last_state == {
        "apiserver /readyz": "ok",
        "nodes Ready": "1/3 Ready; not ready: demo-worker (...)",
        "CoreDNS available": "HTTP 404 Not Found",
        "default ServiceAccount": "ConnectionRefusedError: refused",
    }
    assert "nodes Ready: 1/3 Ready" in str(error)


def test_programming_errors_in_a_check_are_not_swallowed() -> None:
    checks = {"a": sequence(KeyError("bug"))}
    with pytest.raises(KeyError):
        wait_ready(NO_API, expected_nodes=1, timeout=5, interval=0, checks=checks)


class FakeApiserver(ThreadingHTTPServer):
    """Answers ``/readyz`` on loopback the way kube-apiserver does, and records each request."""

    status = 200
    body = b"[+]ping ok\n[+]etcd ok\nreadyz check passed\n"
    requests: list[tuple[str, str | None]]


class ReadyzHandler(BaseHTTPRequestHandler):
    server: FakeApiserver

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        self.send_response(self.server.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def apiserver() -> Iterator[tuple[FakeApiserver, k8s_client.ApiClient]]:
    server = FakeApiserver(("127.0.0.1", 0), ReadyzHandler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # The library's own loader: where it puts a token differs between client generations.
    configuration = k8s_client.Configuration()
    load: Any = k8s_config.load_kube_config_from_dict
    load(
        {
            "clusters": [
                {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
            ],
            "users": [{"name": "u", "user": {"token": "s3cret"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        },
        client_configuration=configuration,
    )
    with k8s_client.ApiClient(configuration) as api:
        yield server, api
    server.shutdown()
    server.server_close()


def test_readyz_goes_through_the_clients_auth_on_this_kubernetes_version(
    apiserver: tuple[FakeApiserver, k8s_client.ApiClient],
) -> None:
    # A real HTTP round trip through whichever client generation is installed: tox's "lowest"
    # environment runs this on the oldest kubernetes the package declares.
    server, api = apiserver
    assert apiserver_readyz(api) == CheckResult(True, "ok")
    assert server.requests == [("/readyz?verbose=", "Bearer s3cret")]


def test_readyz_failure_names_the_failing_checks(
    apiserver: tuple[FakeApiserver, k8s_client.ApiClient],
) -> None:
    server, api = apiserver
    server.status = 500
    server.body = b"[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n"
    assert apiserver_readyz(api) == CheckResult(False, "HTTP 500: [-]etcd failed: reason withheld")


def test_a_forbidden_check_passes_reported_as_forbidden_only_when_allowed() -> None:
    forbidden = ApiException(status=403, reason="Forbidden")
    checks = {
        "apiserver /readyz": sequence(CheckResult(True, "ok")),
        "nodes Ready": sequence(forbidden),
    }
    state: dict[str, str] = {}
    wait_ready(
        NO_API, expected_nodes=0, timeout=5, interval=0, checks=checks, forbidden_ok=True,
        last_state=state,
    )  # fmt: skip
    assert state == {
        "apiserver /readyz": "ok",
        "nodes Ready": "forbidden to these credentials (HTTP 403): not checked",
    }
    # A kind cluster's admin credentials are never forbidden: there it is a failure.
    with pytest.raises(ReadinessTimeout, match="nodes Ready: HTTP 403 Forbidden"):
        wait_ready(NO_API, expected_nodes=0, timeout=0.2, interval=0.05, checks=checks)


def test_existing_clusters_skip_coredns_where_it_is_not_deployed() -> None:
    missing = absent_ok(sequence(ApiException(status=404, reason="Not Found")), "no coredns")
    assert missing(NO_API) == CheckResult(True, "no coredns: not checked", skipped=True)
    failing = absent_ok(sequence(ApiException(status=500, reason="Boom")), "no coredns")
    with pytest.raises(ApiException):
        failing(NO_API)
    assert set(existing_checks()) == {
        "apiserver /readyz", "nodes Ready", "CoreDNS available", "default ServiceAccount",
    }  # fmt: skip


def test_an_unreachable_apiserver_is_one_error_naming_the_server() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configuration = k8s_client.Configuration()
    configuration.host = f"https://127.0.0.1:{port}"
    api = k8s_client.ApiClient(configuration)
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable) as info:
        probe_apiserver(api)
    assert time.monotonic() - started < 10
    assert str(info.value).startswith(f"cannot reach the apiserver at https://127.0.0.1:{port}: ")
    assert "Connection refused" in str(info.value)
    assert isinstance(info.value, ConnectionError)
    api.close()  # type: ignore[no-untyped-call]


# -- a cluster booted from a snapshot: only evidence from after the boot counts -----------------

BOOT = datetime(2026, 11, 30, 12, 0, 0, 400000, tzinfo=UTC)
BEFORE = BOOT - timedelta(minutes=20)  # when the snapshot was taken
AFTER = BOOT + timedelta(seconds=3)


class FakeCore:
    """CoreV1Api and AppsV1Api in one, answering from what the test put in."""

    nodes: ClassVar[list[Any]] = []
    pods: ClassVar[list[Any]] = []

    def __init__(self, api: Any) -> None:
        pass

    def list_node(self, **_: Any) -> Any:
        return k8s_client.V1NodeList(items=self.nodes)

    def list_namespaced_pod(self, namespace: str, **_: Any) -> Any:
        return k8s_client.V1PodList(items=self.pods)

    def read_namespaced_deployment(self, name: str, namespace: str, **_: Any) -> Any:
        # What the snapshot saved: fully available, whatever the pods do now.
        return SimpleNamespace(
            spec=SimpleNamespace(replicas=2), status=SimpleNamespace(available_replicas=2)
        )


def node(name: str, heartbeat: datetime) -> Any:
    ready = k8s_client.V1NodeCondition(
        type="Ready", status="True", last_heartbeat_time=heartbeat, reason="KubeletReady"
    )
    return k8s_client.V1Node(
        metadata=k8s_client.V1ObjectMeta(name=name),
        status=k8s_client.V1NodeStatus(conditions=[ready]),
    )


def coredns_pod(started: datetime | None, ready: bool = True) -> Any:
    state = k8s_client.V1ContainerState(
        running=k8s_client.V1ContainerStateRunning(started_at=started) if started else None
    )
    container = k8s_client.V1ContainerStatus(
        name="coredns", image="c", image_id="c", ready=ready, restart_count=1, state=state
    )
    condition = k8s_client.V1PodCondition(type="Ready", status="True" if ready else "False")
    return k8s_client.V1Pod(
        metadata=k8s_client.V1ObjectMeta(name="coredns-x"),
        status=k8s_client.V1PodStatus(conditions=[condition], container_statuses=[container]),
    )


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> type[FakeCore]:
    monkeypatch.setattr(k8s_client, "CoreV1Api", FakeCore)
    monkeypatch.setattr(k8s_client, "AppsV1Api", FakeCore)
    FakeCore.nodes, FakeCore.pods = [], []
    return FakeCore


def test_a_ready_condition_saved_in_the_snapshot_is_not_fresh(fake_api: type[FakeCore]) -> None:
    fake_api.nodes = [node("snap-control-plane", BEFORE), node("snap-worker", AFTER)]
    stale = readiness.make_nodes_ready(2, since=BOOT)(NO_API)
    assert not stale.ok
    assert "snap-control-plane (status from before this boot)" in stale.state
    assert readiness.make_nodes_ready(2)(NO_API).ok  # a cold cluster takes the status as it is
    # The API keeps whole seconds: a heartbeat in the boot's own second counts.
    fake_api.nodes = [node("a", BOOT.replace(microsecond=0)), node("b", AFTER)]
    assert readiness.make_nodes_ready(2, since=BOOT)(NO_API).ok


def test_coredns_counts_only_pods_ready_with_containers_started_after_the_boot(
    fake_api: type[FakeCore],
) -> None:
    check = readiness.standard_checks(1, since=BOOT)["CoreDNS available"]
    # The Deployment says 2/2 available; the pods are the snapshot's, or not running yet.
    fake_api.pods = [coredns_pod(BEFORE), coredns_pod(None, ready=False)]
    result = check(NO_API)
    assert (result.ok, result.state) == (False, "0/2 pods Ready since this boot")
    fake_api.pods = [coredns_pod(AFTER), coredns_pod(AFTER, ready=False)]
    assert check(NO_API) == readiness.CheckResult(False, "1/2 pods Ready since this boot")
    fake_api.pods = [coredns_pod(AFTER), coredns_pod(AFTER)]
    assert check(NO_API).ok
    # Without a boot time, the Deployment's own status decides, as for a cold cluster.
    assert readiness.standard_checks(1)["CoreDNS available"](NO_API).ok


def test_wait_ready_with_since_times_out_on_stale_status(fake_api: type[FakeCore]) -> None:
    fake_api.nodes = [node("snap-control-plane", BEFORE)]
    fake_api.pods = [coredns_pod(BEFORE), coredns_pod(BEFORE)]
    checks = readiness.standard_checks(1, since=BOOT)
    stale_only = {k: checks[k] for k in ("nodes Ready", "CoreDNS available")}
    with pytest.raises(ReadinessTimeout) as info:
        wait_ready(NO_API, expected_nodes=1, timeout=0.2, interval=0.05, checks=stale_only)
    assert info.value.last_state == {
        "nodes Ready": "0/1 Ready; not ready: snap-control-plane (status from before this boot)",
        "CoreDNS available": "0/2 pods Ready since this boot",
    }


def test_anonymous_readyz_probe_says_yes_only_for_200(
    apiserver: tuple[FakeApiserver, k8s_client.ApiClient],
) -> None:
    server, _ = apiserver
    url = f"http://127.0.0.1:{server.server_port}"
    assert readiness.answers_readyz(url)
    assert server.requests[-1] == ("/readyz", None)  # no credentials sent
    server.status = 403  # before the RBAC bootstrap lets anonymous users read /readyz
    assert not readiness.answers_readyz(url)
    with socket.socket() as sock:  # nothing listens on a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    assert not readiness.answers_readyz(f"https://127.0.0.1:{free}")
