"""Who is an orphan and what a sweep removes, against an in-memory list of labelled resources.

Owners are real processes: this one (alive) and a child that has exited (gone), so the
liveness check itself is exercised, not mocked.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Mapping

import pytest

from pytest_kindcluster.cluster.ownership import (
    Owner,
    OwnerState,
    age_of,
    cluster_labels,
    process_start,
)
from pytest_kindcluster.cluster.reaper import find_stale, remove_run, sweep
from pytest_kindcluster.contract import (
    CLUSTER_LABEL,
    OWNER_HOST_LABEL,
    OWNER_PID_LABEL,
    OWNER_STARTED_LABEL,
    RETAIN_LABEL,
    RUN_ID_LABEL,
)
from pytest_kindcluster.runtime.base import Resource


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited (and been waited for)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


class Engine:
    """Containers and volumes by name; removing a volume a container uses is refused."""

    def __init__(self) -> None:
        self.items: dict[str, Resource] = {}
        self.volume_users: dict[str, str] = {}

    def add(self, kind: str, name: str, labels: Mapping[str, str], *, user: str = "") -> None:
        assert kind in ("container", "volume")
        self.items[name] = Resource(kind, name, dict(labels))  # type: ignore[arg-type]
        if user:
            self.volume_users[name] = user

    def labelled(self, label: str) -> list[Resource]:
        key, _, value = label.partition("=")
        found = [r for r in self.items.values() if key in r.labels]
        found = [r for r in found if not value or r.labels[key] == value]
        return sorted(found, key=lambda r: (r.kind != "container", r.name))

    def remove(self, resource: Resource) -> bool:
        if self.volume_users.get(resource.name) in self.items:
            return False
        return self.items.pop(resource.name, None) is not None


def cluster(engine: Engine, name: str, owner: Owner, *, retain: str = "never") -> None:
    labels = {CLUSTER_LABEL: name, **cluster_labels(owner, f"run-{name}", retain)}
    for node in (f"{name}-control-plane", f"{name}-worker"):
        engine.add("container", node, labels)
        engine.add("volume", f"vol-{node}", labels, user=node)


def test_owner_labels_round_trip_and_this_process_is_alive() -> None:
    me = Owner.of()
    assert me.host == socket.gethostname()
    assert me.started == process_start(me.pid) != ""
    assert Owner.from_labels(me.labels()) == me
    assert me.state() is OwnerState.ALIVE
    assert Owner.from_labels({OWNER_PID_LABEL: "not a pid"}) is None
    assert Owner.from_labels({}) is None


def test_a_dead_pid_a_reused_pid_and_another_host(dead_pid: int) -> None:
    assert Owner.of(dead_pid).state() is OwnerState.GONE
    me = Owner.of()
    # Same pid, but a process that started at another time: the pid was reused.
    assert Owner(me.host, me.pid, str(int(me.started) - 1)).state() is OwnerState.GONE
    # A pid on another machine says nothing about this one's processes.
    assert Owner("elsewhere", dead_pid, "").state() is OwnerState.UNKNOWN


def test_labels_carry_owner_run_creation_and_retention() -> None:
    labels = cluster_labels(Owner.of(), "abc123", "on-failure")
    assert labels[RUN_ID_LABEL] == "abc123"
    assert labels[RETAIN_LABEL] == "on-failure"
    assert {OWNER_HOST_LABEL, OWNER_PID_LABEL, OWNER_STARTED_LABEL} <= set(labels)
    assert age_of(labels) == "0m"
    assert age_of({}) == "?"


def test_only_orphans_are_stale(dead_pid: int) -> None:
    engine = Engine()
    cluster(engine, "orphan", Owner.of(dead_pid))
    cluster(engine, "alive", Owner.of())
    cluster(engine, "remote", Owner("elsewhere", dead_pid, ""))
    cluster(engine, "kept", Owner.of(dead_pid), retain="always")
    engine.add("container", "kind-made", {CLUSTER_LABEL: "kind-made"})  # the kind CLI's

    assert [c.name for c in find_stale(engine, include_retained=False)] == ["orphan"]
    both = find_stale(engine, include_retained=True)
    assert [c.name for c in both] == ["kept", "orphan"]
    assert both[1].containers == ("orphan-control-plane", "orphan-worker")
    assert f"owner pid {dead_pid} on {socket.gethostname()} is gone" in both[1].describe()
    assert "retain=always" in both[0].describe()
    assert find_stale(engine, include_retained=True, spare={"kept", "orphan"}) == []


def test_sweep_removes_orphans_with_their_volumes_and_stray_volumes(dead_pid: int) -> None:
    engine = Engine()
    cluster(engine, "orphan", Owner.of(dead_pid))
    cluster(engine, "alive", Owner.of())
    cluster(engine, "kept", Owner.of(dead_pid), retain="reuse")
    # A volume whose container was removed without -v, and one of a live run being created.
    engine.add("volume", "stray", {**cluster_labels(Owner.of(dead_pid), "r", "never")})
    engine.add("volume", "fresh", {**cluster_labels(Owner.of(), "r", "never")})

    report = sweep(engine)

    assert [c.name for c in report.clusters] == ["orphan"]
    assert sorted(report.volumes) == ["stray", "vol-orphan-control-plane", "vol-orphan-worker"]
    assert report.problems == []
    left = sorted(engine.items)
    assert not {"orphan-control-plane", "orphan-worker", "stray"} & set(left)
    assert {"alive-control-plane", "kept-worker", "vol-kept-worker", "fresh"} <= set(left)
    assert report.lines()[0].startswith("removed stale cluster orphan (2 container(s)")

    pruned = sweep(engine, include_retained=True)
    assert [c.name for c in pruned.clusters] == ["kept"]
    assert not [name for name in engine.items if name.startswith(("kept", "vol-kept"))]
    assert sweep(engine).lines() == []  # nothing left to do


def test_remove_run_follows_each_clusters_retention(dead_pid: int) -> None:
    engine = Engine()
    me = Owner.of()
    for name, retain in [("a", "never"), ("b", "always"), ("c", "on-failure"), ("d", "reuse")]:
        labels = {CLUSTER_LABEL: name, **cluster_labels(me, "run1", retain)}
        engine.add("container", f"{name}-control-plane", labels)
    other = {CLUSTER_LABEL: "other", **cluster_labels(me, "run2", "never")}
    engine.add("container", "other-control-plane", other)

    assert remove_run(engine, "run1", failed=True) == ["a"]
    assert remove_run(engine, "run1", failed=False) == ["c"]
    assert sorted(engine.items) == ["b-control-plane", "d-control-plane", "other-control-plane"]
