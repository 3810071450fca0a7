"""Sessions that share one engine but cannot see each other's processes, and the shared network.

The second run is in its own PID namespace (``unshare --pid --fork --mount-proc``), as a CI job
is in a container that shares the host's Docker socket and host name. Each run sees the other's
owner pid as missing; neither may take that for proof that the owner is gone (issue 11).
At most two single-node clusters exist at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from pytest_kindcluster import KindCluster
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

    def started(name: str) -> bool | None:
        return Path(files(name)["KIND_STARTED_FILE"]).exists() or None

    runs: dict[str, Session] = {}
    try:
        runs[a] = Session(tmp_path / a, "hold_cluster.py", f"--kind-name={a}", env=files(a))
        wait_until(lambda: started(a), what=f"{a} to be ready", timeout=900, interval=1)
        # B's create() reaps first, and finds A's cluster with an owner pid it cannot see.
        runs[b] = Session(
            tmp_path / b, "hold_cluster.py", f"--kind-name={b}", env=files(b), wrap=UNSHARE
        )
        wait_until(lambda: started(b), what=f"{b} to be ready", timeout=900, interval=1)
        assert docker_client.containers.get(f"{a}-control-plane").status == "running"
        labels_a = docker_client.containers.get(f"{a}-control-plane").labels
        labels_b = docker_client.containers.get(f"{b}-control-plane").labels
        assert labels_a[OWNER_PID_LABEL] == str(runs[a].proc.pid)
        assert labels_b[OWNER_PID_LABEL] == "1"  # PID 1 of its own namespace
        assert labels_a[OWNER_PIDNS_LABEL] != labels_b[OWNER_PIDNS_LABEL]

        # The other way round: a sweep from A's namespace (--kind-prune is the widest one)
        # cannot see B's owner either, and leaves B's live cluster alone, saying so.
        pruned = run_session(pytester, "no_cluster.py", "--kind-prune")
        pruned.assert_outcomes(passed=1)
        pruned.stdout.fnmatch_lines(
            [
                f"kindcluster prune: left alone cluster {b} (1 container(s), age *, owner pid 1 "
                "on *: another PID namespace): cannot tell whether its owner still runs; if it "
                f"is abandoned, remove it with `python -m pytest_kindcluster cluster delete {b}`"
            ]
        )
        assert f"cluster {a}" not in pruned.stdout.str()  # its owner is visibly alive
        assert leftovers(b)["containers"] == [f"{b}-control-plane"]

        for name in (a, b):
            Path(files(name)["KIND_RELEASE_FILE"]).touch()
        outcomes = {name: run.wait(timeout=600) for name, run in runs.items()}
    finally:
        for run in runs.values():
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
        for name in (a, b):
            KindCluster(name).delete()
    for name, (code, output) in outcomes.items():
        assert code == 0, output
        assert f"kind {name}: deleted" in output
        assert leftovers(name) == NOTHING
    output_b = outcomes[b][1]
    assert f"removed stale cluster {a}" not in output_b
    assert (f"kind {b}: left alone cluster {a} (1 container(s), age ") in output_b
    assert (
        f"owner pid {runs[a].proc.pid} on {labels_a['dev.pytest-kindcluster.owner-host']}: "
        "another PID namespace): cannot tell whether its owner still runs; if it is abandoned, "
        f"remove it with `python -m pytest_kindcluster cluster delete {a}`"
    ) in output_b
    # Both clusters are gone; the shared network stays, unlabelled, as kind leaves it.
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
