"""Port-forward logic without a cluster: target syntax and the byte relay (on real sockets)."""

from __future__ import annotations

import socket
import threading

import pytest

from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.kube.portforward import _relay, parse_target


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("web", ("pod", "web")),
        ("pod/web", ("pod", "web")),
        ("po/web", ("pod", "web")),
        ("svc/web", ("service", "web")),
        ("service/web", ("service", "web")),
        ("Service/web", ("service", "web")),
    ],
)
def test_targets_are_spelled_as_kubectl_spells_them(target: str, expected: tuple[str, str]) -> None:
    assert parse_target(target) == expected


@pytest.mark.parametrize("target", ["deployment/web", "svc/", "pod/", ""])
def test_unsupported_targets_are_usage_errors(target: str) -> None:
    with pytest.raises(ConfigError, match="cannot port-forward"):
        parse_target(target)


def test_relay_copies_both_ways_until_one_side_closes() -> None:
    client, local = socket.socketpair()
    remote, pod = socket.socketpair()
    stop = threading.Event()
    relay = threading.Thread(target=_relay, args=(local, remote, stop))
    relay.start()
    payload = b"x" * 300_000  # several chunks, so partial reads are exercised
    client.sendall(payload)
    received = b""
    while len(received) < len(payload):
        received += pod.recv(65536)
    assert received == payload
    pod.sendall(b"pong")
    assert client.recv(16) == b"pong"
    pod.close()  # the pod side ends the connection
    relay.join(timeout=5)
    assert not relay.is_alive()
    for sock in (client, local, remote):
        sock.close()


def test_relay_ends_when_the_forwarder_stops() -> None:
    _, local = socket.socketpair()
    remote, _ = socket.socketpair()
    stop = threading.Event()
    relay = threading.Thread(target=_relay, args=(local, remote, stop))
    relay.start()
    stop.set()
    relay.join(timeout=5)
    assert not relay.is_alive()
