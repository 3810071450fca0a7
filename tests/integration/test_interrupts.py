"""Signals against real clusters: when the handlers exist, Ctrl-C during create, and a second
signal during teardown. Each test runs a whole pytest session in a subprocess, signals it, and
checks from outside, with its own Docker client, what is left.

tests/plugin/test_signals.py covers the same rules (and the third signal) on the in-memory
engine; test_crash_safety.py has a signal during the tests.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from pytest_kindcluster import KindCluster
from pytest_kindcluster.util.waiting import wait_until
from tests import support
from tests.support import Session, unique

pytestmark = pytest.mark.integration

NOTHING: dict[str, list[str]] = {"containers": [], "volumes": []}
DEFAULTS = {"SIGINT": "python", "SIGTERM": "default", "SIGHUP": "default"}
OURS = {name: "TerminationHandler._handle" for name in DEFAULTS}
FREEZE = (
    "sleep 1000 & pid=$!; mkdir -p /sys/fs/cgroup/freezer/kindtest; "
    "echo $pid > /sys/fs/cgroup/freezer/kindtest/cgroup.procs; "
    "echo FROZEN > /sys/fs/cgroup/freezer/kindtest/freezer.state"
)


class Runs:
    """The sessions and clusters of one test, stopped and deleted whatever becomes of it."""

    def __init__(self) -> None:
        self.sessions: list[Session] = []
        self.clusters: list[str] = []

    def cluster(self, prefix: str) -> str:
        self.clusters.append(unique(prefix))
        return self.clusters[-1]

    def start(self, *args: Any, **kwargs: Any) -> Session:
        self.sessions.append(Session(*args, **kwargs))
        return self.sessions[-1]


@pytest.fixture
def runs(docker_client: docker.DockerClient) -> Iterator[Runs]:
    made = Runs()
    yield made
    for run in made.sessions:
        run.stop()
    for name in made.clusters:
        # Only what a failed test left: delete() would also try the shared network.
        if any(support.leftovers(docker_client, name).values()):
            KindCluster(name).delete()


def wait_for(path: Path, timeout: float = 900) -> None:
    wait_until(lambda: path.exists() or None, what=str(path), timeout=timeout, interval=0.1)


def running_node(client: docker.DockerClient, name: str) -> Any:
    def running() -> Any:
        found = client.containers.list(filters={"name": f"^{name}$"})
        return found[0] if found else None

    return wait_until(running, what=f"node {name} to run", timeout=600, interval=0.1)


def kubeadm_init_runs(node: Any) -> bool | None:
    processes = node.top(ps_args="-eo pid,args").get("Processes") or []
    return any("kubeadm init" in " ".join(p) for p in processes) or None


@pytest.mark.usefixtures("node_image")
def test_the_handlers_exist_only_while_the_session_owns_a_cluster(
    leftovers: Any, tmp_path: Path, runs: Runs
) -> None:
    # A marked cluster: it is deleted in a config clean-up, after pytest_unconfigure.
    marked = runs.cluster("it-owned")
    run = runs.start(
        tmp_path / "run",
        "signals_session.py",
        env={"KIND_SIGNALS_DIR": str(tmp_path), "KIND_MARKED": marked},
    )
    code, output = run.wait()
    assert code == 0, output
    found = json.loads((tmp_path / "record.json").read_text())
    assert found["before"] == DEFAULTS  # the first test needs no cluster
    assert found["during"] == OURS
    assert found["dispositions-at-removal"] == OURS
    assert found["after"] == DEFAULTS
    assert found["removed"] == [f"{marked}-control-plane"]
    assert f"kind {marked}: deleted" in output
    assert leftovers(marked) == NOTHING


@pytest.mark.parametrize("phase", ["nodes", "kubeadm-init", "kubeadm-init-frozen"])
@pytest.mark.usefixtures("node_image")
def test_ctrl_c_during_create_leaves_nothing_behind(
    docker_client: docker.DockerClient, leftovers: Any, tmp_path: Path, runs: Runs, phase: str
) -> None:
    name = runs.cluster("it-ctrlc")
    tmpdir = tmp_path / "tmp"  # where the session makes its kubeconfig directory
    tmpdir.mkdir()
    run = runs.start(
        tmp_path / "run",
        "needs_cluster.py",
        f"--kind-name={name}",
        "--log-cli-level=WARNING",
        env={"TMPDIR": str(tmpdir)},
    )
    node = running_node(docker_client, f"{name}-control-plane")
    if phase != "nodes":
        wait_until(lambda: kubeadm_init_runs(node), what="kubeadm init", timeout=300, interval=0.2)
    assert list(tmpdir.glob(f"kindcluster-{name}-*"))
    if phase.endswith("frozen"):
        # What a runc inside does while it updates a container's cgroup, and what a kill at
        # that moment leaves: a cgroup v1 freezer stuck FROZEN, which `docker rm -f` cannot kill.
        node.exec_run(["sh", "-c", FREEZE], privileged=True)
        state = Path(f"/sys/fs/cgroup/freezer/docker/{node.id}/kindtest/freezer.state")
        assert state.read_text().strip() == "FROZEN"
    run.proc.send_signal(signal.SIGINT)
    code, output = run.wait(timeout=300)
    assert code == pytest.ExitCode.INTERRUPTED, output
    step = phase.removesuffix("-frozen")
    assert re.search(rf"kind {name}: {step} +[\d.]+s  FAILED", output), output
    if phase.endswith("frozen"):
        assert re.search(rf"thawed \d+ frozen cgroup\(s\) of node {name}-control-plane", output)
    assert leftovers(name) == NOTHING
    assert not list(tmpdir.glob("kindcluster-*"))


@pytest.mark.parametrize(
    ("signum", "marked"),
    [(signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["sigint-default-cluster", "sigterm-marked-cluster"],
)
@pytest.mark.usefixtures("node_image")
def test_a_second_signal_during_teardown_does_not_stop_the_deletion(
    leftovers: Any, tmp_path: Path, runs: Runs, signum: signal.Signals, marked: bool
) -> None:
    name = runs.cluster("it-twice")
    env = {"KIND_SIGNALS_DIR": str(tmp_path), "KIND_WAIT": "yes"}
    run = runs.start(
        tmp_path / "run",
        "signals_session.py",
        f"--kind-name={name}",
        env=env | ({"KIND_MARKED": name} if marked else {}),
    )
    wait_for(tmp_path / "started")
    run.proc.send_signal(signum)
    wait_for(tmp_path / "removing", timeout=120)  # the removal request is on its way now
    run.proc.send_signal(signum)
    code, output = run.wait(timeout=300)
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert f"kindcluster: {signum.name} received again; still deleting {name}" in output
    assert f"kind {name}: deleted" in output
    found = json.loads((tmp_path / "record.json").read_text())
    assert found["removed"] == [f"{name}-control-plane"]
    assert "second-test" not in found
    assert leftovers(name) == NOTHING


@pytest.mark.usefixtures("node_image")
def test_a_third_signal_exits_at_once_and_names_what_is_left(
    leftovers: Any, tmp_path: Path, runs: Runs
) -> None:
    name = runs.cluster("it-thrice")
    env = {"KIND_SIGNALS_DIR": str(tmp_path), "KIND_WAIT": "yes", "KIND_SLOW_REMOVAL": "300"}
    run = runs.start(tmp_path / "run", "signals_session.py", f"--kind-name={name}", env=env)
    wait_for(tmp_path / "started")
    run.proc.send_signal(signal.SIGTERM)
    wait_for(tmp_path / "removing", timeout=120)
    for _ in range(2):
        run.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # two signals at once would be one for the kernel
    code, output = run.wait(timeout=60)
    assert code == 128 + signal.SIGTERM, output
    assert (
        f"kindcluster: SIGTERM received 3 times: exiting now. Left behind: {name}. "
        f"Remove them with: kind delete cluster --name {name}"
    ) in output
    # It really is left: the user was told the truth (the fixture removes it now).
    assert leftovers(name)["containers"] == [f"{name}-control-plane"]
