"""The first error wins: clean-up failures become notes on it, and everything removable goes.

The in-memory engine refuses to remove chosen nodes, the way Docker refuses a node whose
processes cannot be killed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_kindcluster.cluster import lifecycle
from pytest_kindcluster.cluster import logs as cluster_logs
from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.errors import (
    EngineError,
    KindClusterError,
    ProvisionError,
    RuntimeUnavailable,
)
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.runtime.fake import FakeRuntime

INIT_FAILURE = "[kubelet-check] The kubelet is not healthy"


@pytest.fixture(autouse=True)
def always_ready(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "wait_ready", lambda api, **kwargs: {})


def make(fake: FakeRuntime, tmp_path: Path, **kwargs: Any) -> KindCluster:
    kwargs.setdefault("logs_dir", tmp_path / "logs")
    return KindCluster("demo", runtime=fake, images=fake, run_id="run1", **kwargs)


def failing_init(*unremovable: str) -> FakeRuntime:
    fake = FakeRuntime()
    fake.fail(("kubeadm", "init"), exit_code=1, output=INIT_FAILURE)
    fake.unremovable.update(unremovable)
    return fake


def test_a_failed_removal_is_a_note_on_the_kubeadm_failure_and_the_rest_is_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = failing_init("demo-worker")
    cluster = make(fake, tmp_path, workers=2)
    with caplog.at_level(logging.WARNING), pytest.raises(ProvisionError) as info:
        cluster.create()
    error = info.value
    assert not isinstance(error, BaseExceptionGroup)
    assert error.step == "kubeadm-init"
    assert INIT_FAILURE in str(error)  # the evidence, first
    assert (tmp_path / "logs" / "demo" / "demo-worker" / "serial.log").exists()
    notes = error.__notes__
    assert any(
        n.startswith("clean-up could not remove the nodes: container engine failed to remove")
        and "demo-worker" in n
        for n in notes
    ), notes
    assert "left behind: demo-worker; remove with `docker rm -f -v demo-worker`" in notes
    # Everything that could go went: the other nodes and the kubeconfig directory.
    assert list(fake.containers) == ["demo-worker"]
    assert not cluster.kubeconfig_path.parent.exists()
    assert "clean-up could not remove the nodes" in caplog.text  # and it was logged


def test_an_exception_group_from_the_engine_does_not_replace_the_error(tmp_path: Path) -> None:
    class GroupingEngine(FakeRuntime):
        def remove_nodes(self, names: Sequence[str]) -> None:
            raise ExceptionGroup(
                "remove nodes", [EngineError(f"remove node {n!r}", "refused") for n in names]
            )

    fake = GroupingEngine()
    fake.fail(("kubeadm", "init"), output=INIT_FAILURE)
    cluster = make(fake, tmp_path, workers=1)
    with pytest.raises(ProvisionError) as info:
        cluster.create()
    assert INIT_FAILURE in str(info.value)
    assert any("remove node 'demo-worker'" in n for n in info.value.__notes__)
    assert any(
        n.startswith("left behind: demo-control-plane, demo-worker") for n in info.value.__notes__
    )
    assert not cluster.kubeconfig_path.parent.exists()


def test_a_failed_log_export_does_not_stop_the_removal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_export(*args: Any) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(cluster_logs, "export_logs", broken_export)
    fake = failing_init()
    cluster = make(fake, tmp_path, workers=1)
    with pytest.raises(ProvisionError) as info:
        cluster.create()
    assert INIT_FAILURE in str(info.value)
    assert "clean-up could not export the logs: OSError: disk full" in info.value.__notes__
    assert fake.containers == {}


def test_an_engine_that_went_away_during_the_rollback_leaves_the_first_error(
    tmp_path: Path,
) -> None:
    class VanishingEngine(FakeRuntime):
        def list_nodes(self, cluster: str) -> Any:
            if any(argv[:2] == ("kubeadm", "init") for argv in self.commands()):
                raise RuntimeUnavailable("lost the Docker engine")
            return super().list_nodes(cluster)

    fake = VanishingEngine()
    fake.fail(("kubeadm", "init"), output=INIT_FAILURE)
    cluster = make(fake, tmp_path)
    with pytest.raises(ProvisionError) as info:
        cluster.create()
    assert INIT_FAILURE in str(info.value)
    assert "clean-up could not list the nodes: lost the Docker engine" in info.value.__notes__
    assert not cluster.kubeconfig_path.parent.exists()


def test_an_interrupt_during_create_stays_the_interrupt_when_removal_fails(
    tmp_path: Path,
) -> None:
    class InterruptedInit(FakeRuntime):
        def exec(self, node: str, argv: Sequence[str], **kwargs: Any) -> Any:
            if tuple(argv[:2]) == ("kubeadm", "init"):
                raise KeyboardInterrupt
            return super().exec(node, argv, **kwargs)

    fake = InterruptedInit()
    fake.unremovable.add("demo-worker")
    cluster = make(fake, tmp_path, workers=1)
    with pytest.raises(KeyboardInterrupt) as info:
        cluster.create()
    assert "left behind: demo-worker; remove with `docker rm -f -v demo-worker`" in (
        info.value.__notes__
    )
    assert list(fake.containers) == ["demo-worker"]
    assert not cluster.kubeconfig_path.parent.exists()


def test_no_engine_at_create_leaves_no_kubeconfig_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_engine() -> Any:
        raise RuntimeUnavailable("cannot reach a Docker engine")

    monkeypatch.setattr(lifecycle, "connect_engine", no_engine)
    cluster = KindCluster("demo")
    assert cluster.kubeconfig_path.parent.is_dir()
    with pytest.raises(RuntimeUnavailable):
        cluster.create()
    assert not cluster.kubeconfig_path.parent.exists()


def test_delete_removes_what_it_can_and_raises_the_first_failure(tmp_path: Path) -> None:
    fake = FakeRuntime()
    cluster = make(fake, tmp_path, workers=2).create()
    fake.unremovable.add("demo-worker2")
    with pytest.raises(EngineError, match="demo-worker2") as info:
        cluster.close()
    assert "left behind: demo-worker2; remove with `docker rm -f -v demo-worker2`" in (
        info.value.__notes__
    )
    assert list(fake.containers) == ["demo-worker2"]
    assert not cluster.kubeconfig_path.parent.exists()


def test_close_still_deletes_when_the_log_export_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeRuntime()
    cluster = make(fake, tmp_path).create()

    def broken_export(dest: Any) -> Path:
        raise KindClusterError("cannot write the logs")

    monkeypatch.setattr(cluster, "export_logs", broken_export)
    with pytest.raises(KindClusterError, match="cannot write the logs"):
        cluster.close(failed=True, export_logs=True)
    assert fake.containers == {}


def test_a_failure_inside_with_wins_over_a_failed_close(tmp_path: Path) -> None:
    fake = FakeRuntime()

    def use_then_fail() -> None:
        with make(fake, tmp_path):
            fake.unremovable.add("demo-control-plane")
            raise ValueError("the test's own failure")

    with pytest.raises(ValueError, match="the test's own failure") as info:
        use_then_fail()
    assert any(
        n.startswith("closing cluster 'demo' also failed: container engine failed")
        for n in info.value.__notes__
    )
