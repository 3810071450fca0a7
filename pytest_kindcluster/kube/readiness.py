"""Strict readiness: the cluster is ready when a test can use it, not when kubeadm returns.

kind's ``--wait`` checks only the control-plane node and only warns on timeout; users bolt on
waits for workers and CoreDNS (kueue PR 9081, podman-desktop PR 14532). Here every check must
pass in the same round, and running out of time raises :class:`ReadinessTimeout` carrying the
last observed state of each check. An existing cluster gets read-only checks instead
(:func:`existing_checks`), where what its credentials may not read is reported, not failed.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import urllib3
import urllib3.exceptions
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from pytest_kindcluster.errors import ClusterUnreachable, ReadinessTimeout, WaitExpired
from pytest_kindcluster.util.waiting import wait_until

# One slow answer must not eat the whole budget; the next round asks again.
REQUEST_TIMEOUT = (2.0, 5.0)
_TRANSIENT = (ApiException, urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict and what it saw, in words a human can act on."""

    ok: bool
    state: str
    #: Passed without checking anything: forbidden to these credentials, or not applicable.
    skipped: bool = False


Check = Callable[[k8s_client.ApiClient], CheckResult]


def apiserver_readyz(api: k8s_client.ApiClient) -> CheckResult:
    """``/readyz``, which covers etcd and the apiserver's post-start hooks."""
    status, text = _get_readyz(api)
    if status == 200:
        return CheckResult(True, "ok")
    if status == 403:
        raise ApiException(status=403, reason="Forbidden")  # for forbidden_ok to see
    failing = [line.strip() for line in text.splitlines() if line.startswith("[-]")]
    return CheckResult(False, f"HTTP {status}: {'; '.join(failing) or text[:200]}")


def _get_readyz(api: k8s_client.ApiClient) -> tuple[int, str]:
    """``GET /readyz?verbose`` with the client's own TLS and auth: (status, body).

    /readyz has no generated API method. Clients from 37.0 on (regenerated with pydantic models)
    split a raw call into ``param_serialize`` and ``call_api``; earlier ones take the path and
    options in ``call_api`` and raise ``ApiException`` for any status outside 2xx.
    """
    query = [("verbose", "")]
    if hasattr(api, "param_serialize"):
        method, url, headers, body, post = api.param_serialize(
            "GET", "/readyz", query_params=query, auth_settings=["BearerToken"]
        )
        response = api.call_api(method, url, headers, body, post, _request_timeout=REQUEST_TIMEOUT)
        # The urllib3 response underneath; RESTResponse.read() is untyped.
        return response.status, _text(response.response.data)
    legacy: Any = api  # the installed client's stubs describe only the new signature
    try:
        # Unparsed (_preload_content=False): the urllib3 response itself, on every version.
        raw = legacy.call_api(
            "/readyz",
            "GET",
            query_params=query,
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
    except ApiException as exc:
        if not exc.status:  # status 0: a TLS failure, no answer to read
            raise
        return exc.status, _text(exc.body)
    return raw.status, _text(raw.data)


def answers_readyz(server: str) -> bool:
    """Whether ``server`` answers an anonymous ``/readyz`` with 200, within a second.

    Anonymous requests may read /readyz once the apiserver's RBAC bootstrap is done; until
    then, and while nothing listens, this says no. Cheap enough to poll: no process, no
    credentials, no certificate checks (nothing is trusted from the answer but its status).
    """
    pool = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False, timeout=1.0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            return pool.request("GET", f"{server}/readyz").status == 200
    except urllib3.exceptions.HTTPError:
        return False
    finally:
        pool.clear()


def _text(body: bytes | str | None) -> str:
    return body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")


def _fresh(stamp: datetime | None, since: datetime | None) -> bool:
    """Whether an API timestamp was written at or after ``since``.

    The API keeps whole seconds, so ``since`` is truncated too; nothing of the cluster ran in
    that second before it (the nodes were stopped long before).
    """
    return since is None or (stamp is not None and stamp >= since.replace(microsecond=0))


def make_nodes_ready(expected: int | None, since: datetime | None = None) -> Check:
    """Every one of the ``expected`` nodes is registered and Ready (None: every registered one).

    With ``since`` (a cluster booted from a snapshot), a Ready condition counts only if its
    kubelet posted it after that time: the API still shows the status from before the snapshot.
    """

    def nodes_ready(api: k8s_client.ApiClient) -> CheckResult:
        nodes = k8s_client.CoreV1Api(api).list_node(_request_timeout=REQUEST_TIMEOUT).items
        not_ready = []
        for node in nodes:
            conditions = (node.status.conditions if node.status else None) or []
            ready = next((c for c in conditions if c.type == "Ready"), None)
            name = node.metadata.name if node.metadata else "?"
            if ready is not None and not _fresh(ready.last_heartbeat_time, since):
                not_ready.append(f"{name} (status from before this boot)")
            elif ready is None or ready.status != "True":
                why = f"{ready.reason}: {ready.message}" if ready else "no Ready condition yet"
                not_ready.append(f"{name} ({why})")
        count = len(nodes) - len(not_ready)
        wanted = len(nodes) if expected is None else expected
        state = f"{count}/{wanted} Ready"
        if len(nodes) < wanted:
            state += f", only {len(nodes)} registered"
        if not_ready:
            state += "; not ready: " + ", ".join(not_ready)
        return CheckResult(len(nodes) >= wanted and not not_ready, state)

    return nodes_ready


def coredns_available(api: k8s_client.ApiClient) -> CheckResult:
    """The CoreDNS Deployment has all its replicas available, so Service names resolve."""
    apps = k8s_client.AppsV1Api(api)
    deployment = apps.read_namespaced_deployment(
        "coredns", "kube-system", _request_timeout=REQUEST_TIMEOUT
    )
    wanted = deployment.spec.replicas or 0
    available = (deployment.status.available_replicas if deployment.status else None) or 0
    return CheckResult(wanted > 0 and available >= wanted, f"{available}/{wanted} available")


def make_coredns_pods_ready(since: datetime) -> Check:
    """As many CoreDNS pods as the Deployment wants are Ready, with containers started since.

    After a restore the Deployment's status is the one saved with the snapshot ("2/2
    available" while its pods are not even running), so the pods themselves are the evidence.
    """

    def coredns_pods(api: k8s_client.ApiClient) -> CheckResult:
        apps = k8s_client.AppsV1Api(api)
        deployment = apps.read_namespaced_deployment(
            "coredns", "kube-system", _request_timeout=REQUEST_TIMEOUT
        )
        wanted = deployment.spec.replicas or 0
        pods = (
            k8s_client.CoreV1Api(api)
            .list_namespaced_pod(
                "kube-system", label_selector="k8s-app=kube-dns", _request_timeout=REQUEST_TIMEOUT
            )
            .items
        )
        fresh = 0
        for pod in pods:
            if pod.metadata and pod.metadata.deletion_timestamp:
                continue
            status = pod.status
            conditions = (status.conditions if status else None) or []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            containers = (status.container_statuses if status else None) or []
            running = [c.state.running for c in containers if c.state and c.state.running]
            started = [state.started_at for state in running]
            if ready and containers and len(started) == len(containers):
                fresh += all(_fresh(stamp, since) for stamp in started)
        state = f"{fresh}/{wanted} pods Ready since this boot"
        return CheckResult(wanted > 0 and fresh >= wanted, state)

    return coredns_pods


def make_service_account(namespace: str) -> Check:
    """The ``default`` ServiceAccount of ``namespace`` exists."""

    def present(api: k8s_client.ApiClient) -> CheckResult:
        k8s_client.CoreV1Api(api).read_namespaced_service_account(
            "default", namespace, _request_timeout=REQUEST_TIMEOUT
        )
        return CheckResult(True, "present")

    return present


def wait_service_account(api: k8s_client.ApiClient, namespace: str, *, timeout: float) -> None:
    """Wait for a new namespace's default ServiceAccount; until then Pods are refused.

    Credentials that may not read ServiceAccounts cannot wait for one: that is no failure.
    """
    check = {f"default ServiceAccount in {namespace}": make_service_account(namespace)}
    wait_ready(
        api, expected_nodes=0, timeout=timeout, interval=0.1, checks=check, forbidden_ok=True
    )


def absent_ok(check: Check, what: str) -> Check:
    """``check``, passing (skipped) when its object does not exist (HTTP 404)."""

    def run(api: k8s_client.ApiClient) -> CheckResult:
        try:
            return check(api)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return CheckResult(True, f"{what}: not checked", skipped=True)

    return run


def existing_checks() -> dict[str, Check]:
    """Read-only checks for a cluster made elsewhere, whose size and add-ons are its own.

    Every registered node must be Ready; CoreDNS only where it is deployed as kubeadm does it
    (GKE, for one, runs kube-dns instead).
    """
    return {
        "apiserver /readyz": apiserver_readyz,
        "nodes Ready": make_nodes_ready(None),
        "CoreDNS available": absent_ok(coredns_available, "no coredns Deployment in kube-system"),
        "default ServiceAccount": make_service_account("default"),
    }


def probe_apiserver(api: k8s_client.ApiClient) -> None:
    """One request to ``/readyz``: :class:`ClusterUnreachable` naming the server if it fails.

    Polling an address that will never answer would only spend the whole timeout and end in
    urllib3's retry noise. An answer of any kind but 401 means the server is there.
    """
    server = str(api.configuration.host)
    try:
        status, _ = _get_readyz(api)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
        # Not chained: urllib3's retries make the cause three tracebacks deep, and all they
        # say is in the message (the server, and the last attempt's error).
        raise ClusterUnreachable(server, f"{type(reason).__name__}: {reason}") from None
    if status == 401:
        raise ClusterUnreachable(
            server, "it rejects the credentials (HTTP 401 Unauthorized); expired or revoked?"
        )


def standard_checks(expected_nodes: int, since: datetime | None = None) -> dict[str, Check]:
    """The four checks every cluster must pass, in the order they usually turn green.

    ``since`` (timezone-aware) is when a cluster restored from a snapshot booted: node and
    CoreDNS status older than that is what the snapshot saved, not evidence about this boot.
    """
    return {
        "apiserver /readyz": apiserver_readyz,
        "nodes Ready": make_nodes_ready(expected_nodes, since),
        "CoreDNS available": coredns_available if since is None else make_coredns_pods_ready(since),
        "default ServiceAccount": make_service_account("default"),
    }


def _run_check(check: Check, api: k8s_client.ApiClient, forbidden_ok: bool) -> CheckResult:
    try:
        return check(api)
    except ApiException as exc:
        if exc.status == 403 and forbidden_ok:
            return CheckResult(True, "forbidden to these credentials (HTTP 403): not checked", True)
        return CheckResult(False, f"HTTP {exc.status} {exc.reason}")
    except _TRANSIENT as exc:
        return CheckResult(False, f"{type(exc).__name__}: {exc}")


def wait_ready(
    api: k8s_client.ApiClient,
    *,
    expected_nodes: int,
    timeout: float,
    interval: float = 0.5,
    checks: dict[str, Check] | None = None,
    forbidden_ok: bool = False,
    last_state: dict[str, str] | None = None,
    since: datetime | None = None,
) -> dict[str, float]:
    """Poll until every check passes in one round; returns when each first passed (seconds).

    Raises :class:`ReadinessTimeout` with the last state of every check when time runs out.
    With ``forbidden_ok`` a check the credentials may not make (HTTP 403) passes, reported as
    such. ``last_state``, if given, is filled with each check's final state. ``since`` asks for
    evidence from after that time (see :func:`standard_checks`).
    """
    checks = checks if checks is not None else standard_checks(expected_nodes, since)
    state = last_state if last_state is not None else {}
    state.update(dict.fromkeys(checks, "not checked yet"))
    first_ok: dict[str, float] = {}
    started = time.monotonic()

    def round_of_checks() -> bool | None:
        # Every check in one round, so "ready" means all of them hold at the same time, and a
        # timeout reports a fresh state for each (not only the first one that failed).
        all_ok = True
        for name, check in checks.items():
            result = _run_check(check, api, forbidden_ok)
            state[name] = result.state
            if result.ok:
                first_ok.setdefault(name, time.monotonic() - started)
            all_ok = all_ok and result.ok
        return True if all_ok else None

    try:
        wait_until(round_of_checks, what="cluster readiness", timeout=timeout, interval=interval)
    except WaitExpired as exc:
        raise ReadinessTimeout(timeout, state) from exc
    return first_ok
