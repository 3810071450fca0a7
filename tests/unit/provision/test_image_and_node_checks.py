"""Fast, clear failures for bad images and dead nodes, on the in-memory runtime.

The real-engine versions of these (tests/integration/test_bad_input.py) prove the messages
against Docker; these pin the logic: what is checked, in which order, and what is said.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from pytest_kindcluster.cluster.health import NodeWatch, stopped_nodes
from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.errors import ClusterDown, ImageError
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.runtime.base import NodeDetails
from pytest_kindcluster.runtime.fake import FakeRuntime
from pytest_kindcluster.util.progress import LogProgress


class StoppingRuntime(FakeRuntime):
    """A fake whose nodes can be stopped, reporting what ``docker inspect`` would."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped: dict[str, dict[str, object]] = {}

    def inspect_node(self, name: str) -> NodeDetails:
        details = super().inspect_node(name)
        state = self.stopped.get(name)
        if state is None:
            return details
        return replace(details, state="exited", inspect={"State": state})


@pytest.fixture(autouse=True)
def instant_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readiness, "wait_ready", lambda api, **kwargs: {})


def make(fake: FakeRuntime, tmp_path: Path, image: str | None = None) -> KindCluster:
    return KindCluster(
        "demo", image=image, runtime=fake, images=fake, logs_dir=tmp_path, run_id="run1"
    )


def test_missing_image_is_pulled_and_a_failed_pull_is_one_clear_error(tmp_path: Path) -> None:
    fake = FakeRuntime(images={})
    with pytest.raises(ImageError) as info:
        make(fake, tmp_path, image="registry.invalid/none:1").create()
    first, *rest = str(info.value).splitlines()
    assert "registry.invalid/none:1 not in the Docker engine and not pullable" in first
    assert "node-image build" in first
    assert "cannot pull registry.invalid/none:1: the fake engine has no registry" in rest[0]
    assert fake.containers == {}
    assert fake.calls == []  # nothing ran


def test_an_image_without_kind_version_is_refused_before_any_container_runs(
    tmp_path: Path,
) -> None:
    fake = FakeRuntime(images={"busybox:1.36": "sha256:busybox"}, image_files={})
    with pytest.raises(ImageError) as info:
        make(fake, tmp_path, image="busybox:1.36").create()
    message = str(info.value)
    assert message.startswith(
        "busybox:1.36 is not a kind node image: it has no /kind/version (checked before "
        "running it, in a container that was never started); build the node image with "
        "`python -m pytest_kindcluster node-image build`, `docker load` a saved one, or use a "
        "kindest/node image"
    )
    assert fake.copies == [("busybox:1.36", "/kind/version")]
    assert fake.containers == {}
    assert fake.calls == []  # no node ever existed, so nothing ran in one


def test_a_started_node_without_kind_version_is_still_caught_before_waiting_for_boot(
    tmp_path: Path,
) -> None:
    # An image may carry the file and still not be usable (here: `cat` fails in the node).
    fake = FakeRuntime()
    fake.fail(["cat", "/kind/version"], output="cat: can't open '/kind/version': No such file")
    with pytest.raises(ImageError) as info:
        make(fake, tmp_path).create()
    message = str(info.value)
    assert "is not a kind node image: demo-control-plane has no /kind/version" in message
    assert "No such file" in message
    assert fake.containers == {}  # rolled back
    assert not [argv for argv in fake.commands() if argv[0] == "kubeadm"]


class Registry(FakeRuntime):
    """A fake engine whose registry has one image: pulling it makes it local."""

    def __init__(self, ref: str, files: dict[str, bytes]) -> None:
        super().__init__(images={}, image_files={ref: files})
        self.ref = ref
        self.pulled: list[str] = []

    def pull_image(self, ref: str) -> None:
        if ref != self.ref:
            super().pull_image(ref)
        self.pulled.append(ref)
        self.images[ref] = "sha256:pulled"


def test_a_missing_node_image_is_pulled_said_so_and_verified_before_it_runs(
    tmp_path: Path,
) -> None:
    notes: list[str] = []

    class Notes(LogProgress):
        def note(self, cluster: str, text: str) -> None:
            notes.append(text)

    good = Registry("kindest/node:v1.37.2", {"/kind/version": b"v1.37.2\n"})
    KindCluster("demo", image=good.ref, runtime=good, images=good, progress=Notes()).create()
    assert good.pulled == [good.ref]
    assert notes[1] == f"image {good.ref} is not in the engine; pulling it"
    assert re.fullmatch(rf"pulled {re.escape(good.ref)} in \d+\.\ds", notes[2])
    bad = Registry("example/app:1", {"/app": b"binary"})
    with pytest.raises(ImageError, match="example/app:1 is not a kind node image: it has no"):
        make(bad, tmp_path, image=bad.ref).create()
    assert bad.pulled == [bad.ref]
    assert bad.containers == {}  # pulled, but never run


def test_stopped_nodes_are_described_with_the_engines_facts() -> None:
    fake = StoppingRuntime()
    cluster = KindCluster("demo", workers=1, runtime=fake, images=fake).create()
    assert stopped_nodes(cluster.nodes) == []
    fake.stopped["demo-worker"] = {"ExitCode": 137, "OOMKilled": True, "FinishedAt": "12:00"}
    assert stopped_nodes(cluster.nodes) == [
        "demo-worker: exited (exit code 137, killed for lack of memory, at 12:00)"
    ]


def test_watch_exports_logs_once_and_fails_every_later_check(tmp_path: Path) -> None:
    fake = StoppingRuntime()
    cluster = KindCluster("demo", runtime=fake, images=fake).create()
    exports: list[Path] = []

    def export(dest: Path) -> Path:
        exports.append(dest)
        return dest

    watch = NodeWatch(
        "demo", lambda: cluster.nodes, export, logs_dir=tmp_path, progress=LogProgress()
    )
    watch.check()  # all running: nothing happens
    assert exports == []
    fake.stopped["demo-control-plane"] = {"ExitCode": 137}
    for _ in range(2):
        with pytest.raises(ClusterDown) as info:
            watch.check()
        assert "demo-control-plane: exited (exit code 137)" in str(info.value)
        assert f"logs exported to {tmp_path / 'demo'}" in str(info.value)
    assert exports == [tmp_path / "demo"]  # once, not per test
