"""xdist sharing, parallel runs, crash clean-up and signals, with real pytest runs and clusters.

Each test starts whole pytest sessions in subprocesses and checks from outside, through its own
Docker client, what exists while they run and what is left after. At most two clusters exist
at a time (the machine has two cores).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import docker
import pytest

from pytest_kindcluster import KindCluster
from pytest_kindcluster.util.waiting import wait_until
from tests.support import Session, run_session, unique

pytestmark = pytest.mark.integration

OWNER_PID_LABEL = "dev.pytest-kindcluster.owner-pid"
NOTHING: dict[str, list[str]] = {"containers": [], "volumes": []}


def cluster_name(output: str) -> str:
    match = re.search(r"kindcluster: image=\S+ \(\w+\), name=(\S+)", output)
    assert match, output
    return match.group(1)


def wait_for_node(docker_client: docker.DockerClient, name: str) -> Any:
    def running() -> Any:
        found = docker_client.containers.list(filters={"name": f"^{name}$"})
        return found[0] if found else None

    return wait_until(running, what=f"node {name} to run", timeout=300, interval=0.2)


def booted(node: Any) -> bool | None:
    return "Reached target" in node.logs(tail=200).decode(errors="replace") or None


def test_four_xdist_workers_share_exactly_one_cluster(
    pytester: pytest.Pytester,
    node_image: str,
    leftovers: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = unique("it-n4")
    monkeypatch.setenv("KIND_XDIST_RECORD_DIR", str(tmp_path))
    result = run_session(pytester, "xdist_count.py", f"--kind-name={name}", "-n", "4")
    result.assert_outcomes(passed=8)
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    assert len(records) == 8
    assert {r["worker"] for r in records} == {"gw0", "gw1", "gw2", "gw3"}
    # Counted by each test, from the engine, while the run was going: one cluster, this one.
    assert {tuple(r["clusters_of_run"]) for r in records} == {(name,)}
    # Owned by the controller, which outlives the worker that happened to create it.
    assert {tuple(r["owner_pids"]) for r in records} == {(str(records[0]["controller_pid"]),)}
    assert len({r["worker"] for r in records if not r["attached"]}) == 1
    result.stdout.fnmatch_lines([f"kind {name}: deleted"])
    assert leftovers(name) == NOTHING


def test_two_runs_started_together_never_touch_each_other(
    node_image: str, leftovers: Any, tmp_path: Path
) -> None:
    runs = [
        Session(
            tmp_path / run,
            "needs_cluster.py",
            env={"KIND_RECORD_KUBECONFIG": str(tmp_path / f"{run}.txt")},
        )
        for run in ("a", "b")
    ]
    outcomes = [run.wait() for run in runs]
    for code, output in outcomes:
        assert code == 0, output
    names = [cluster_name(output) for _, output in outcomes]
    (kubeconfig_a, port_a), (kubeconfig_b, port_b) = (
        (tmp_path / f"{run}.txt").read_text().split() for run in ("a", "b")
    )
    assert names[0] != names[1]
    assert kubeconfig_a != kubeconfig_b
    assert port_a != port_b
    for name in names:
        assert leftovers(name) == NOTHING
    assert not Path(kubeconfig_a).exists()
    assert not Path(kubeconfig_b).exists()


def test_sigkill_during_create_then_the_next_run_reaps_and_prune_spares_the_kept_one(
    pytester: pytest.Pytester,
    docker_client: docker.DockerClient,
    node_image: str,
    leftovers: Any,
    tmp_path: Path,
) -> None:
    orphan, kept, following = unique("it-orphan"), unique("it-kept"), unique("it-next")
    stale = unique("it-stale")
    pids: dict[str, int] = {}

    def killed_while_creating(name: str, *extra: str) -> None:
        run = Session(tmp_path / name, "needs_cluster.py", f"--kind-name={name}", *extra)
        node = wait_for_node(docker_client, f"{name}-control-plane")
        # Well inside creation: systemd is booting or kubeadm init is running.
        wait_until(partial(booted, node), what="the node to boot", timeout=120)
        run.proc.kill()
        code, output = run.wait()
        assert code == -signal.SIGKILL, output
        assert f"kind {name}: ready in" not in output  # killed before it was ready
        # The orphan really exists, labelled with an owner that is now gone.
        assert leftovers(name)["containers"] == [f"{name}-control-plane"]
        assert leftovers(name)["volumes"]
        pids[name] = run.proc.pid
        assert docker_client.containers.get(f"{name}-control-plane").labels[OWNER_PID_LABEL] == str(
            run.proc.pid
        )

    try:
        # The kept one first: each run reaps the orphans it finds, so the orphan must be last.
        killed_while_creating(kept, "--kind-retain=always")
        killed_while_creating(orphan)

        result = run_session(pytester, "needs_cluster.py", f"--kind-name={following}")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                f"kind {following}: removed stale cluster {orphan} (1 container(s), age *, "
                f"owner pid {pids[orphan]} on * is gone)"
            ]
        )
        assert leftovers(orphan) == NOTHING
        assert leftovers(following) == NOTHING
        # Retained clusters are never reaped behind the user's back...
        assert leftovers(kept)["containers"] == [f"{kept}-control-plane"]

        # --kind-prune, even in a session that needs no cluster, removes a stale cluster...
        killed_while_creating(stale)
        pruned = run_session(pytester, "no_cluster.py", "--kind-prune")
        pruned.assert_outcomes(passed=1)
        pruned.stdout.fnmatch_lines(
            [
                f"kindcluster prune: removed stale cluster {stale} (1 container(s), age *, "
                f"owner pid {pids[stale]} on * is gone)"
            ]
        )
        assert leftovers(stale) == NOTHING
        # ... but never a retained one (issue 11: it used to, and this test asserted it did).
        assert kept not in pruned.stdout.str()
        assert leftovers(kept)["containers"] == [f"{kept}-control-plane"]

        # Only a delete by name removes it.
        deleted = subprocess.run(
            [sys.executable, "-m", "pytest_kindcluster", "cluster", "delete", kept],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert deleted.returncode == 0, deleted.stderr
        assert deleted.stdout == f"deleted cluster {kept} (1 container(s))\n"
        assert leftovers(kept) == NOTHING
    finally:
        for name in (orphan, kept, following, stale):
            KindCluster(name).delete()


@pytest.mark.parametrize(
    ("signum", "xdist"),
    [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, False)],
    ids=["sigterm", "sigterm-xdist", "sigint"],
)
def test_a_signal_during_the_tests_tears_the_cluster_down(
    node_image: str, leftovers: Any, tmp_path: Path, signum: signal.Signals, xdist: bool
) -> None:
    name = unique("it-signal")
    started = tmp_path / "started"
    extra = ["-n", "2"] if xdist else []
    run = Session(
        tmp_path / "run",
        "long_test.py",
        f"--kind-name={name}",
        *extra,
        env={"KIND_STARTED_FILE": str(started)},
    )
    try:
        wait_until(lambda: started.exists() or None, what="the test to start", timeout=900)
        assert leftovers(name)["containers"] == [f"{name}-control-plane"]
        run.proc.send_signal(signum)
        code, output = run.wait(timeout=300)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert f"kind {name}: deleted" in output
    assert leftovers(name) == NOTHING
