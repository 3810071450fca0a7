"""Sessions that share one engine but cannot see each other's processes, and the shared network.

The second run is in its own PID namespace (``unshare --pid --fork --mount-proc``), as a CI job
is in a container that shares the host's Docker socket and host name. Each run sees the other's
owner pid as missing; neither may take that for proof that the owner is gone (issue 11).
At most two single-node clusters exist at a time. ``unshare --pid`` needs root, as the rest of
the integration suite does for Docker.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker
import pytest

from pytest_kindcluster import KindCluster
from pytest_kindcluster.cluster.ownership import OwnerState
from pytest_kindcluster.cluster.reaper import survey
from pytest_kindcluster.contract import (
    DEFAULT_NETWORK,
    NETWORK_CLUSTER_LABEL,
    OWNER_PID_LABEL,
    OWNER_PIDNS_LABEL,
)
from pytest_kindcluster.runtime import connect_engine
from pytest_kindcluster.util.waiting import wait_until
from tests.support import Session, run_session, unique

pytestmark = pytest.mark.integration

# --kill-child: if this test dies, so does the run inside the namespace (it is PID 1 there,
# as pytest is in a container).
UNSHARE = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
NOTHING: dict[str, list[str]] = {"containers": [], "volumes": []}
HOST = socket.gethostname()


def test_runs_in_two_pid_namespaces_never_reap_each_others_live_cluster(
    pytester: pytest.Pytester,
    docker_client: docker.DockerClient,
    node_image: str,
    leftovers: Any,
    tmp_path: Path,
) -> None:
    a, b = unique("it-ns-a"), unique("it-ns-b")

    def files(name: str) -> dict[str, str]:
        return {
            "KIND_STARTED_FILE": str(tmp_path / f"{name}.started"),
            "KIND_RELEASE_FILE": str(tmp_path / f"{name}.release"),
        }

    def options(name: str) -> list[str]:
        # Logs next to each run's output, should its cluster fail.
        return [f"--kind-name={name}", f"--kind-logs-dir={tmp_path / name / 'logs'}"]

    def started(name: str) -> bool | None:
        if Path(files(name)["KIND_STARTED_FILE"]).exists():
            return True
        code = runs[name].proc.poll()
        assert code is None, f"{name} ended ({code}) before its cluster was ready:\n" + (
            runs[name].log.read_text()
        )
        return None

    runs: dict[str, Session] = {}
    try:
        runs[a] = Session(tmp_path / a, "hold_cluster.py", *options(a), env=files(a))
        wait_until(lambda: started(a), what=f"{a} to be ready", timeout=900, interval=1)
        # B's create() reaps first, and finds A's live cluster with an owner pid it cannot see.
        # B's own cluster is retained: on a host where other sessions still run an older
        # version, those would take B's owner (pid 1 of its namespace) for gone and reap its
        # cluster, the very bug this test is about; they spare retained clusters.
        runs[b] = Session(
            tmp_path / b,
            "hold_cluster.py",
            *options(b),
            "--kind-retain=always",
            env=files(b),
            wrap=UNSHARE,
        )
        wait_until(lambda: started(b), what=f"{b} to be ready", timeout=900, interval=1)
        assert docker_client.containers.get(f"{a}-control-plane").status == "running"
        labels_a = docker_client.containers.get(f"{a}-control-plane").labels
        labels_b = docker_client.containers.get(f"{b}-control-plane").labels
        assert labels_a[OWNER_PID_LABEL] == str(runs[a].proc.pid)
        assert labels_b[OWNER_PID_LABEL] == "1"  # PID 1 of its own namespace
        assert labels_a[OWNER_PIDNS_LABEL] != labels_b[OWNER_PIDNS_LABEL]

        # The other way round, from A's namespace with the real /proc: A's owner is visibly
        # running, B's cannot be seen, and neither counts as gone.
        found = {c.name: c.verdict for c in survey(connect_engine().resources())}
        assert found[a].state is OwnerState.ALIVE
        assert found[a].reason.endswith(f"owner pid {runs[a].proc.pid} on {HOST} is running")
        assert found[b].state is OwnerState.UNKNOWN
        assert found[b].reason == f"owner pid 1 on {HOST}: another PID namespace"

        for name in (a, b):
            Path(files(name)["KIND_RELEASE_FILE"]).touch()
        outcomes = {name: run.wait(timeout=600) for name, run in runs.items()}
        for code, output in outcomes.values():
            assert code == 0, output
        output_a, output_b = outcomes[a][1], outcomes[b][1]
        assert f"kind {a}: deleted" in output_a
        assert leftovers(a) == NOTHING
        assert f"removed stale cluster {a}" not in output_b
        assert (
            f"kind {b}: left alone cluster {a} (1 container(s), age 0m, owner pid "
            f"{runs[a].proc.pid} on {HOST}: another PID namespace): cannot tell whether its "
            "owner still runs; if it is abandoned, remove it with "
            f"`python -m pytest_kindcluster cluster delete {a}`"
        ) in output_b

        # B's run is over and its cluster retained: a prune from here keeps it, silently...
        assert f"kind {b}: kept (retain=always)" in output_b
        pruned = run_session(pytester, "no_cluster.py", "--kind-prune")
        pruned.assert_outcomes(passed=1)
        assert f"cluster {b}" not in pruned.stdout.str()
        assert leftovers(b)["containers"] == [f"{b}-control-plane"]
        # ... and only a delete by name removes it (its owner cannot be told: no --force needed).
        deleted = subprocess.run(
            [sys.executable, "-m", "pytest_kindcluster", "cluster", "delete", b],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert deleted.returncode == 0, deleted.stderr
        assert leftovers(b) == NOTHING
    finally:
        for run in runs.values():
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
        for name in (a, b):
            KindCluster(name).delete()
    # The shared network stays, unlabelled, as kind leaves it.
    network = docker_client.networks.get(DEFAULT_NETWORK)
    assert not [k for k in network.attrs.get("Labels") or {} if k.startswith("dev.pytest-")]


def test_only_a_network_made_for_one_cluster_alone_is_removed(
    docker_client: docker.DockerClient,
) -> None:
    runtime = connect_engine()
    dedicated, plain = unique("it-net"), unique("it-net")
    docker_client.networks.create(dedicated, labels={NETWORK_CLUSTER_LABEL: "some-cluster"})
    docker_client.networks.create(plain)
    try:
        assert runtime.remove_network(dedicated)
        assert not runtime.remove_network(plain)  # not made for one cluster: not ours to take
        assert not runtime.remove_network(DEFAULT_NETWORK)  # kind's shared network: never
        names = {n.name for n in docker_client.networks.list()}
        assert dedicated not in names
        assert plain in names
    finally:
        for name in (dedicated, plain):
            for network in docker_client.networks.list(names=[name]):
                if network.name == name:
                    network.remove()
