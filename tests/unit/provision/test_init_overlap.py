"""kubeadm init with the add-ons applied while it finishes (provision/kubeadm.py, KubeadmInit)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest

from pytest_kindcluster.errors import CommandFailed, ConfigError
from pytest_kindcluster.kube import kubeconfig, readiness
from pytest_kindcluster.provision import kubeadm
from pytest_kindcluster.provision.context import StepContext
from pytest_kindcluster.provision.kubeadm import KubeadmInit


class ControlPlane:
    """A node whose ``kubeadm init`` blocks until released (or fails)."""

    name = "c-control-plane"

    def __init__(self, *, init_error: Exception | None = None) -> None:
        self.release = threading.Event()
        self.init_error = init_error
        self.log: list[str] = []

    def exec(self, *argv: str, **_: Any) -> Any:
        if argv[:2] == ("kubeadm", "init"):
            # Held back until the early steps ran, or for a fixed while when they cannot.
            self.release.wait(timeout=1.0)
            self.log.append("init done")
            if self.init_error is not None:
                raise self.init_error
        return SimpleNamespace(output="", exit_code=0, stdout="")

    def details(self) -> Any:
        return SimpleNamespace(name="c-control-plane", ports={"6443/tcp": ("127.0.0.1", 1)})


class Addon:
    """An early step that records what it did; ``refusals`` forbidden answers come first."""

    def __init__(self, name: str, node: ControlPlane, *, refusals: int = 0) -> None:
        self.name = name
        self.node = node
        self.refusals = refusals

    def prepare(self, ctx: StepContext) -> None:
        self.node.log.append(f"prepare {self.name}")

    def run(self, ctx: StepContext) -> None:
        if self.refusals:
            self.refusals -= 1
            raise CommandFailed(["kubectl", "create"], 1, 'Error from server (Forbidden): "x"')
        self.node.log.append(f"run {self.name}")
        if self.name == "storage":
            self.node.release.set()  # the last add-on is in: kubeadm may finish now


def context(node: ControlPlane) -> StepContext:
    return cast(
        StepContext,
        SimpleNamespace(control_plane=node, load_balancer=None, spec=SimpleNamespace(name="c")),
    )


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kubeadm, "EARLY_POLL", 0.01)


def test_the_add_ons_go_in_while_kubeadm_init_still_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([False, False, True])
    monkeypatch.setattr(readiness, "answers_readyz", lambda server: next(answers, True))
    node = ControlPlane()
    steps = [Addon("cni", node, refusals=2), Addon("storage", node)]
    KubeadmInit(steps).run(context(node))
    # Both ran (the CNI after two refusals while the admin's binding was missing), in order,
    # and before init returned.
    assert node.log == ["prepare cni", "prepare storage", "run cni", "run storage", "init done"]


def test_without_an_apiserver_to_probe_they_run_after_init(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unpublished(details: Any) -> str:
        raise ConfigError("node does not publish port 6443")

    monkeypatch.setattr(kubeconfig, "host_server", unpublished)
    node = ControlPlane()
    KubeadmInit([Addon("cni", node), Addon("storage", node)]).run(context(node))
    assert node.log == ["prepare cni", "prepare storage", "init done", "run cni", "run storage"]


def test_a_failed_init_is_the_error_and_no_add_on_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "answers_readyz", lambda server: False)
    failure = CommandFailed(["kubeadm", "init"], 1, "etcd did not start")
    node = ControlPlane(init_error=failure)
    with pytest.raises(CommandFailed) as info:
        KubeadmInit([Addon("cni", node), Addon("storage", node)]).run(context(node))
    assert info.value is failure
    assert [entry for entry in node.log if entry.startswith("run")] == []


def test_an_add_on_error_other_than_forbidden_fails_the_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(readiness, "answers_readyz", lambda server: True)
    node = ControlPlane()

    class Broken(Addon):
        def run(self, ctx: StepContext) -> None:
            raise CommandFailed(["kubectl", "create"], 1, "error: no objects passed to create")

    with pytest.raises(CommandFailed, match="no objects passed"):
        KubeadmInit([Broken("cni", node), Addon("storage", node)]).run(context(node))
    assert "run storage" not in node.log


def test_refusals_until_init_ends_leave_the_rest_for_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(readiness, "answers_readyz", lambda server: True)
    node = ControlPlane()

    class RefusedUntilInitIsDone(Addon):
        def run(self, ctx: StepContext) -> None:
            if "init done" not in self.node.log:
                raise CommandFailed(["kubectl", "apply"], 1, "Error from server (Forbidden)")
            super().run(ctx)

    steps = [Addon("cni", node), RefusedUntilInitIsDone("storage", node)]
    KubeadmInit(steps).run(context(node))
    # The CNI is not created twice; storage runs once, after init.
    assert node.log == ["prepare cni", "prepare storage", "run cni", "init done", "run storage"]
