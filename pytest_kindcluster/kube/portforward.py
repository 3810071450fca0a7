"""Forward a local TCP port to a pod or Service, like ``kubectl port-forward``, without kubectl.

::

    with port_forward(api_client, "default", "svc/web", 80) as port:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/")

A listener thread accepts connections on the local port; each connection gets its own
port-forward stream (the kubernetes client's websocket ``portforward``) and a relay thread, so
concurrent connections do not share or block one another. Targets are spelled as kubectl and
pytest-kind spell them: ``pod/NAME``, ``svc/NAME`` (or ``service/NAME``), or a bare pod ``NAME``.
For a Service, the forwarded port is the *service* port, mapped to a ready backing pod and its
target port (named target ports included) through the Service's EndpointSlices.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward as open_stream
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from pytest_kindcluster.errors import ConfigError, PortForwardError

log = logging.getLogger(__name__)

_POD_KINDS = ("pod", "pods", "po")
_SERVICE_KINDS = ("svc", "service", "services")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Backend:
    """Where connections go: a pod and the port inside it."""

    pod: str
    port: int


def parse_target(target: str) -> tuple[str, str]:
    """``svc/web`` -> ("service", "web"); a bare name is a pod, as kubectl takes it."""
    kind, sep, name = target.partition("/")
    if not sep:
        kind, name = "pod", target
    kind = kind.lower()
    if kind in _POD_KINDS and name:
        return "pod", name
    if kind in _SERVICE_KINDS and name:
        return "service", name
    raise ConfigError(
        f"cannot port-forward to {target!r}: use pod/NAME, svc/NAME (or service/NAME), or NAME"
    )


def resolve(api_client: Any, namespace: str, target: str, remote_port: int) -> Backend:
    """The pod and pod port that ``target:remote_port`` means right now."""
    kind, name = parse_target(target)
    core = k8s.CoreV1Api(api_client)
    if kind == "pod":
        try:
            pod = core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            raise PortForwardError(f"pod {namespace}/{name}: {exc.reason} ({exc.status})") from exc
        phase = pod.status.phase if pod.status else None
        if phase != "Running":
            raise PortForwardError(f"pod {namespace}/{name} is {phase}, not Running")
        return Backend(name, remote_port)
    return _service_backend(api_client, core, namespace, name, remote_port)


def _service_backend(
    api_client: Any, core: Any, namespace: str, name: str, remote_port: int
) -> Backend:
    try:
        service = core.read_namespaced_service(name, namespace)
    except ApiException as exc:
        raise PortForwardError(f"service {namespace}/{name}: {exc.reason} ({exc.status})") from exc
    ports = service.spec.ports or []
    spec = next((p for p in ports if p.port == remote_port), None)
    if spec is None:
        offered = ", ".join(str(p.port) for p in ports) or "none"
        raise PortForwardError(
            f"service {namespace}/{name} has no port {remote_port} (its ports: {offered})"
        )
    slices = k8s.DiscoveryV1Api(api_client).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={name}"
    )
    seen: list[str] = []
    for endpoint_slice in slices.items:
        # The slice's port of the same name carries the resolved (possibly named) targetPort.
        port = next(
            (p.port for p in endpoint_slice.ports or [] if (p.name or "") == (spec.name or "")),
            None,
        )
        for endpoint in endpoint_slice.endpoints or []:
            ref = endpoint.target_ref
            ready = endpoint.conditions is None or endpoint.conditions.ready is not False
            seen.append(f"{ref.name if ref else '?'}(ready={ready})")
            if ready and ref is not None and ref.kind == "Pod" and ref.name and port is not None:
                return Backend(ref.name, port)
    raise PortForwardError(
        f"service {namespace}/{name} port {remote_port} has no ready pod behind it "
        f"(endpoints: {', '.join(seen) or 'none'})"
    )


def namespace_from_args(args: tuple[str, ...], namespace: str | None = None) -> str:
    """kubectl's ``-n NS`` / ``--namespace[=]NS`` among pytest-kind's extra arguments."""
    rest = list(args)
    found = namespace
    while rest:
        arg = rest.pop(0)
        if arg in ("-n", "--namespace") and rest:
            found = rest.pop(0)
        elif arg.startswith("--namespace="):
            found = arg.split("=", 1)[1]
        else:
            raise ConfigError(
                f"port_forward: unsupported kubectl argument {arg!r} (only -n/--namespace)"
            )
    return found or "default"


class Forwarder:
    """The local listener and its connections; use :func:`port_forward` rather than this."""

    def __init__(
        self, api_client: Any, namespace: str, backend: Backend, address: str, port: int = 0
    ) -> None:
        # The client's portforward() swaps call_api on the ApiClient it is given while it opens
        # the websocket, which is not thread-safe: use a private client and open one at a time.
        self._client = k8s.ApiClient(configuration=api_client.configuration)
        self._open_lock = threading.Lock()
        self.namespace = namespace
        self.backend = backend
        self._listener = socket.create_server((address, port))
        # accept() wakes up regularly to notice stop().
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[Any] = set()
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def start(self) -> None:
        """Accept connections in the background."""
        self._spawn(self._accept_loop, "accept")

    def _spawn(self, target: Any, what: str, *args: Any) -> None:
        thread = threading.Thread(
            target=target, args=args, name=f"port-forward {self.backend.pod} {what}", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed by stop()
            self._spawn(self._serve, "connection", conn)

    def _open(self) -> Any:
        core = k8s.CoreV1Api(self._client)
        with self._open_lock:
            return open_stream(
                core.connect_get_namespaced_pod_portforward,
                self.backend.pod,
                self.namespace,
                ports=str(self.backend.port),
            )

    def _serve(self, conn: socket.socket) -> None:
        self._track(conn)
        try:
            stream = self._open()
        except Exception as exc:  # noqa: BLE001 - any failure ends this connection only
            self._record(f"cannot open a stream to {self.backend}: {exc}")
            self._untrack(conn)
            conn.close()
            return
        remote = stream.socket(self.backend.port)
        remote.setblocking(True)
        self._track(remote)
        try:
            _relay(conn, remote, self._stop)
        finally:
            for sock in (conn, remote):
                self._untrack(sock)
                with contextlib.suppress(OSError):
                    sock.close()
            error = stream.error(self.backend.port)
            if error:
                self._record(f"pod {self.backend.pod} port {self.backend.port}: {error.strip()}")

    def _record(self, message: str) -> None:
        log.warning("port-forward: %s", message)
        with self._lock:
            self.errors.append(message)

    def _track(self, sock: Any) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _untrack(self, sock: Any) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def stop(self) -> None:
        """Stop accepting, cut every open connection, and wait for the threads."""
        self._stop.set()
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        self._client.close()  # type: ignore[no-untyped-call]


def _relay(local: socket.socket, remote: Any, stop: threading.Event) -> None:
    """Copy bytes both ways until either side closes (or the forwarder stops)."""
    peer = {local.fileno(): remote, remote.fileno(): local}
    with selectors.DefaultSelector() as selector:
        selector.register(local, selectors.EVENT_READ)
        selector.register(remote.fileno(), selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in selector.select(timeout=0.5):
                source = local if key.fd == local.fileno() else remote
                try:
                    data = source.recv(_CHUNK)
                except OSError:
                    return
                if not data:
                    return
                try:
                    peer[key.fd].sendall(data)
                except OSError:
                    return


@contextlib.contextmanager
def port_forward(
    api_client: Any,
    namespace: str,
    target: str,
    remote_port: int,
    local_port: int | None = None,
    *,
    address: str = "127.0.0.1",
    retries: int = 10,
) -> Iterator[int]:
    """Forward ``address:local_port`` (a free port if None) to ``target``; yields the port.

    Resolving the target is retried ``retries`` times a second apart, so a Service whose pod is
    still starting is waited for briefly, as pytest-kind's retries did.
    """
    backend = None
    for attempt in Retrying(
        stop=stop_after_attempt(max(retries, 1)),
        wait=wait_fixed(1),
        retry=retry_if_exception_type(PortForwardError),
        reraise=True,
    ):
        with attempt:
            backend = resolve(api_client, namespace, target, remote_port)
    assert backend is not None  # Retrying either returned a backend or re-raised
    try:
        forwarder = Forwarder(api_client, namespace, backend, address, local_port or 0)
    except OSError as exc:
        raise PortForwardError(f"cannot listen on {address}:{local_port}: {exc}") from exc
    port = forwarder.port
    forwarder.start()
    log.info("port-forward %s:%d -> %s/%s:%d", address, port, namespace, backend.pod, backend.port)
    try:
        yield port
    finally:
        forwarder.stop()
