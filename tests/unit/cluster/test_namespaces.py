"""The rule that removes namespaces crashed runs left behind (cluster/namespaces.py)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pytest_kindcluster.cluster.namespaces import STALE_AFTER, is_stale, metadata, sweep
from pytest_kindcluster.cluster.ownership import Owner
from pytest_kindcluster.contract import RUN_ID_LABEL
from pytest_kindcluster.kube import namespaces as kube_namespaces
from pytest_kindcluster.kube.namespaces import NamespaceInfo
from tests.support import dead_pid

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def namespace(
    name: str, owner: Owner | None, *, run_id: str = "other", age: timedelta = timedelta(0),
    terminating: bool = False,
) -> NamespaceInfo:  # fmt: skip
    labels, annotations = metadata(owner or Owner("h", 1, ""), run_id)
    return NamespaceInfo(
        name, labels, annotations if owner else {}, NOW - age, terminating=terminating
    )


def test_namespaces_carry_the_label_the_run_id_and_the_owner() -> None:
    owner = Owner.of()
    labels, annotations = metadata(owner, "run1")
    assert labels == {"app.kubernetes.io/managed-by": "pytest-kindcluster", RUN_ID_LABEL: "run1"}
    assert Owner.from_labels(annotations) == owner


def test_the_rule_deletes_only_provable_leftovers() -> None:
    here = Owner.of()
    gone = Owner(here.host, dead_pid(), "", here.pid_ns, here.boot_id)
    elsewhere = Owner("another-host", os.getpid(), "")
    old = STALE_AFTER + timedelta(minutes=1)
    verdicts = {
        ns.name: is_stale(ns, "mine", NOW)
        for ns in [
            namespace("owner-gone", gone),
            namespace("owner-alive", here),
            namespace("owner-alive-but-old", here, age=old),
            namespace("my-own-run", gone, run_id="mine"),
            namespace("gone-but-terminating", gone, terminating=True),
            namespace("other-host-young", elsewhere, age=timedelta(hours=1)),
            namespace("other-host-old", elsewhere, age=old),
            namespace("no-owner-old", None, age=old),
        ]
    }
    assert verdicts == {
        "owner-gone": True,
        "owner-alive": False,
        "owner-alive-but-old": False,
        "my-own-run": False,
        "gone-but-terminating": False,
        "other-host-young": False,
        "other-host-old": True,
        "no-owner-old": True,
    }


def test_sweep_deletes_the_stale_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    here = Owner.of()
    gone = Owner(here.host, dead_pid(), "", here.pid_ns, here.boot_id)
    listed = [namespace("left-behind", gone), namespace("in-use", Owner.of())]
    deleted: list[str] = []
    selectors: list[str] = []

    def list_labelled(api: Any, selector: str) -> list[NamespaceInfo]:
        selectors.append(selector)
        return listed

    def delete(api: Any, name: str) -> bool:
        deleted.append(name)
        return True

    monkeypatch.setattr(kube_namespaces, "list_labelled", list_labelled)
    monkeypatch.setattr(kube_namespaces, "delete", delete)
    done = sweep(None, "mine", now=NOW)
    assert selectors == ["app.kubernetes.io/managed-by=pytest-kindcluster"]
    assert deleted == done.deleted == ["left-behind"]
    assert done.lines() == ["deleted namespaces left by crashed runs: left-behind"]


def test_credentials_that_may_not_list_namespaces_skip_the_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube_namespaces, "list_labelled", lambda api, selector: None)
    done = sweep(None, "mine")
    assert done.forbidden
    assert done.lines() == [
        "cannot list namespaces (forbidden): leftovers of crashed runs not swept"
    ]
