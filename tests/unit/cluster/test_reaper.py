"""What a sweep removes, leaves alone and reports, against an in-memory list of labelled resources.

Owners are judged by a host view whose facts each test sets (see test_ownership.py): a pid
listed in it is alive, any other pid is gone, and owners can sit in another PID namespace.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.cluster.ownership import CREATED_FORMAT, Owner, cluster_labels
from pytest_kindcluster.cluster.reaper import delete_command, remove_run, survey, sweep
from pytest_kindcluster.contract import CLUSTER_LABEL, CREATED_LABEL, OWNER_PID_LABEL
from pytest_kindcluster.errors import EngineError
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.runtime.base import Resource
from pytest_kindcluster.runtime.fake import FakeRuntime
from tests.unit.cluster.test_ownership import View, owner

LIVE, DEAD = 100, 200
VIEW = View({LIVE: "5000"})
OTHER_NS = "4026532001"


class Engine:
    """Containers and volumes by name; removing a volume a container uses is refused."""

    def __init__(self) -> None:
        self.items: dict[str, Resource] = {}
        self.volume_users: dict[str, str] = {}
        self.broken: set[str] = set()

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
        if resource.name in self.broken:  # a container stuck in the engine
            raise EngineError(f"remove container {resource.name}", "device or resource busy")
        if self.volume_users.get(resource.name) in self.items:
            return False
        return self.items.pop(resource.name, None) is not None


def labels_of(who: Owner, name: str, retain: str, hours_old: float) -> dict[str, str]:
    created = datetime.now(UTC) - timedelta(hours=hours_old)
    return {
        CLUSTER_LABEL: name,
        **cluster_labels(who, f"run-{name}", retain),
        CREATED_LABEL: created.strftime(CREATED_FORMAT),
    }


def cluster(
    engine: Engine, name: str, who: Owner, *, retain: str = "never", hours_old: float = 0
) -> None:
    labels = labels_of(who, name, retain, hours_old)
    for node in (f"{name}-control-plane", f"{name}-worker"):
        engine.add("container", node, labels)
        engine.add("volume", f"vol-{node}", labels, user=node)


def names(engine: Engine, prefix: str) -> list[str]:
    return sorted(n for n in engine.items if n.startswith((prefix, f"vol-{prefix}")))


def test_only_clusters_whose_owner_is_proven_gone_are_removed() -> None:
    engine = Engine()
    cluster(engine, "orphan", owner(DEAD))
    cluster(engine, "alive", owner(LIVE))
    cluster(engine, "elsewhere", owner(DEAD, pid_ns=OTHER_NS))  # a container next door
    cluster(engine, "kept", owner(DEAD), retain="always")
    engine.add("container", "kind-made", {CLUSTER_LABEL: "kind-made"})  # the kind CLI's

    found = {c.name: c.verdict.state.value for c in survey(engine, view=VIEW)}
    assert found == {"alive": "alive", "elsewhere": "unknown", "kept": "gone", "orphan": "gone"}

    report = sweep(engine, view=VIEW)
    assert [c.name for c in report.removed] == ["orphan"]
    assert [c.name for c in report.left_alone] == ["elsewhere"]
    assert sorted(report.volumes) == ["vol-orphan-control-plane", "vol-orphan-worker"]
    assert names(engine, "orphan") == []
    assert len(names(engine, "alive")) == len(names(engine, "elsewhere")) == 4
    assert len(names(engine, "kept")) == 4
    assert "kind-made" in engine.items
    assert report.lines() == [
        f"removed stale cluster orphan (2 container(s), age 0m, owner pid {DEAD} on box is gone)",
        f"left alone cluster elsewhere (2 container(s), age 0m, owner pid {DEAD} on box: another "
        "PID namespace): cannot tell whether its owner still runs; if it is abandoned, remove "
        "it with `python -m pytest_kindcluster cluster delete elsewhere`",
        "removed 2 stray volume(s) of dead runs",
    ]
    assert sweep(engine, view=VIEW).removed == []  # nothing left to do


def test_retained_clusters_are_never_swept_whatever_the_age() -> None:
    engine = Engine()
    for retain in ("always", "on-failure", "reuse"):
        cluster(engine, f"kept-{retain}", owner(DEAD), retain=retain, hours_old=100)
        cluster(engine, f"odd-{retain}", owner(DEAD, boot_id="x"), retain=retain, hours_old=100)
    report = sweep(engine, older_than=timedelta(minutes=1), view=VIEW)
    assert report.removed == report.left_alone == []
    assert report.volumes == []
    assert len(engine.items) == 24


def test_older_than_also_removes_unknown_owners_old_enough() -> None:
    engine = Engine()
    cluster(engine, "old-unknown", owner(DEAD, pid_ns=OTHER_NS), hours_old=7)
    cluster(engine, "young-unknown", owner(DEAD, pid_ns=OTHER_NS), hours_old=5)
    cluster(engine, "old-alive", owner(LIVE), hours_old=50)
    cluster(engine, "old-older-version", owner(DEAD, pid_ns="", boot_id=""), hours_old=9)
    no_date = labels_of(owner(DEAD, host="elsewhere"), "no-date", "never", 0)
    del no_date[CREATED_LABEL]
    engine.add("container", "no-date-control-plane", no_date)

    report = sweep(engine, older_than=timedelta(hours=6), view=VIEW)

    assert [c.name for c in report.removed] == ["old-older-version", "old-unknown"]
    assert [c.name for c in report.left_alone] == ["no-date", "young-unknown"]
    assert names(engine, "old-unknown") == names(engine, "old-older-version") == []
    assert len(names(engine, "old-alive")) == 4  # a live owner is never swept, however old
    assert "age ?" in report.lines()[2]


def test_a_stuck_leftover_is_a_warning_and_the_sweep_goes_on() -> None:
    engine = Engine()
    cluster(engine, "stuck", owner(DEAD))
    cluster(engine, "orphan", owner(DEAD))
    engine.broken.add("stuck-control-plane")

    report = sweep(engine, view=VIEW)

    assert [c.name for c in report.removed] == ["orphan"]
    assert report.problems == [
        "container stuck-control-plane of stale cluster stuck: container engine failed to "
        "remove container stuck-control-plane: device or resource busy"
    ]
    assert report.lines()[-1].startswith("warning: could not remove container stuck-control")
    assert "stuck-control-plane" in engine.items
    assert "stuck-worker" not in engine.items


def test_spare_is_left_whatever_its_state() -> None:
    engine = Engine()
    cluster(engine, "reused", owner(DEAD))
    cluster(engine, "other", owner(DEAD, pid_ns=OTHER_NS))
    report = sweep(engine, spare={"reused", "other"}, view=VIEW)
    assert report.removed == report.left_alone == []
    assert len(engine.items) == 8


def test_stray_volumes_go_only_with_a_proven_dead_non_retained_owner() -> None:
    engine = Engine()
    for name, who, retain in [
        ("stray", owner(DEAD), "never"),
        ("fresh", owner(LIVE), "never"),
        ("next-door", owner(DEAD, pid_ns=OTHER_NS), "never"),
        ("kept", owner(DEAD), "always"),
    ]:
        engine.add("volume", name, {**cluster_labels(who, "r", retain)})
    report = sweep(engine, view=VIEW)
    assert report.volumes == ["stray"]
    assert sorted(engine.items) == ["fresh", "kept", "next-door"]


def test_remove_run_follows_each_clusters_retention_and_reports_problems() -> None:
    engine = Engine()
    me = owner(LIVE)
    for name, retain in [("a", "never"), ("b", "always"), ("c", "on-failure"), ("d", "reuse")]:
        labels = {CLUSTER_LABEL: name, **cluster_labels(me, "run1", retain)}
        engine.add("container", f"{name}-control-plane", labels)
    other = {CLUSTER_LABEL: "other", **cluster_labels(me, "run2", "never")}
    engine.add("container", "other-control-plane", other)
    stuck = {CLUSTER_LABEL: "e", **cluster_labels(me, "run1", "never")}
    engine.add("container", "e-control-plane", stuck)
    engine.broken.add("e-control-plane")

    removed, problems = remove_run(engine, "run1", failed=True)
    assert removed == ["a"]
    assert len(problems) == 1
    assert problems[0].startswith("container e-control-plane: ")
    assert remove_run(engine, "run1", failed=False)[0] == ["c"]
    assert sorted(engine.items) == [
        "b-control-plane",
        "d-control-plane",
        "e-control-plane",
        "other-control-plane",
    ]


def test_delete_command_names_the_cluster() -> None:
    assert delete_command("x") == "python -m pytest_kindcluster cluster delete x"


# -- create() reaps best effort ---------------------------------------------------------------


class StuckRuntime(FakeRuntime):
    """An engine in which one leftover container cannot be removed."""

    def __init__(self, stuck: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stuck = stuck

    def remove(self, resource: Resource) -> bool:
        if resource.name == self.stuck:
            raise EngineError(f"remove container {resource.name}", "device or resource busy")
        return super().remove(resource)


class UnlistableRuntime(FakeRuntime):
    """An engine that errors when asked for labelled resources."""

    def labelled(self, label: str) -> list[Resource]:
        raise EngineError(f"list containers labelled {label}", "internal error")


@pytest.fixture
def no_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "wait_ready", lambda api, **kwargs: {})


def dead_owner_labels(name: str) -> dict[str, str]:
    # A pid the real view says is gone: an exited child of this process.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return {CLUSTER_LABEL: name, **cluster_labels(Owner.of(child.pid), "r0", "never")}


@pytest.mark.usefixtures("no_readiness")
def test_create_succeeds_when_someone_elses_leftover_cannot_be_removed(tmp_path: Path) -> None:
    fake = StuckRuntime("old-control-plane")
    fake.add_foreign_node("old-control-plane", "old")
    fake.containers["old-control-plane"].labels.update(dead_owner_labels("old"))
    assert OWNER_PID_LABEL in fake.containers["old-control-plane"].labels

    cluster = KindCluster("demo", runtime=fake, images=fake, kubeconfig=tmp_path / "kc").create()

    assert cluster.ready_seconds is not None
    assert len(cluster.reap_notes) == 1
    assert cluster.reap_notes[0].startswith(
        "warning: could not remove container old-control-plane of stale cluster old:"
    )
    assert "device or resource busy" in cluster.reap_notes[0]
    cluster.delete()


@pytest.mark.usefixtures("no_readiness")
def test_create_succeeds_when_leftovers_cannot_even_be_listed(tmp_path: Path) -> None:
    fake = UnlistableRuntime()
    cluster = KindCluster("demo", runtime=fake, images=fake, kubeconfig=tmp_path / "kc").create()
    assert cluster.ready_seconds is not None
    assert cluster.reap_notes == [
        "warning: could not look for leftovers of crashed runs: container engine failed to "
        f"list containers labelled {OWNER_PID_LABEL}: internal error"
    ]
