"""``python -m pytest_kindcluster cluster delete NAME``, against the in-memory runtime."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_kindcluster.__main__ import main
from pytest_kindcluster.cluster import cli
from pytest_kindcluster.cluster.ownership import Owner, cluster_labels
from pytest_kindcluster.contract import CLUSTER_LABEL
from pytest_kindcluster.errors import KindClusterError
from pytest_kindcluster.runtime.fake import FakeRuntime


def exited_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def ours(fake: FakeRuntime, name: str, owner: Owner, retain: str) -> None:
    for node in (f"{name}-control-plane", f"{name}-worker"):
        fake.add_foreign_node(node, name)
        fake.containers[node].labels.update(
            {CLUSTER_LABEL: name, **cluster_labels(owner, "r", retain)}
        )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRuntime:
    engine = FakeRuntime()
    monkeypatch.setattr(cli, "connect_engine", lambda: engine)
    return engine


def test_a_retained_cluster_is_deleted_when_named(
    fake: FakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    ours(fake, "kept", Owner.of(exited_pid()), "always")
    ours(fake, "other", Owner.of(exited_pid()), "always")
    assert main(["cluster", "delete", "kept"]) == 0
    assert capsys.readouterr().out == "deleted cluster kept (2 container(s))\n"
    assert sorted(fake.containers) == ["other-control-plane", "other-worker"]


def test_a_cluster_whose_owner_cannot_be_told_is_deleted_when_named(fake: FakeRuntime) -> None:
    ours(fake, "next-door", Owner("box", 1, "1", "4026532001", "boot"), "never")
    assert "deleted" in cli.delete_cluster("next-door", engine=fake)
    assert fake.containers == {}


def test_clusters_of_the_kind_cli_are_refused(
    fake: FakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_foreign_node("kinds-control-plane", "kinds")
    assert main(["cluster", "delete", "kinds"]) == 1
    assert capsys.readouterr().err == (
        "error: cluster 'kinds' was not made by pytest-kindcluster (no owner labels); "
        "delete it with `kind delete cluster --name kinds`\n"
    )
    assert list(fake.containers) == ["kinds-control-plane"]


def test_a_cluster_in_use_needs_force(fake: FakeRuntime) -> None:
    ours(fake, "busy", Owner.of(), "never")
    with pytest.raises(KindClusterError, match=r"is in use \(owner pid \d+ on .* is running\)"):
        cli.delete_cluster("busy", engine=fake)
    assert len(fake.containers) == 2
    assert main(["cluster", "delete", "busy", "--force"]) == 0
    assert fake.containers == {}


def test_an_unknown_name_is_an_error(fake: FakeRuntime, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "delete", "nothing"]) == 1
    assert capsys.readouterr().err == "error: no cluster named 'nothing' in this engine\n"


def test_help_says_what_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cluster", "delete", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Retained clusters and clusters whose owner cannot be checked are deleted too" in text
    assert "kind delete cluster --name NAME" in text
    assert "--force" in text
