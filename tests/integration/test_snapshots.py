"""Warm start for real: capture a ready cluster, boot clones of it, fall back to cold.

Every test makes snapshots of its own (a node label unique to the test run is part of the
inputs, so no other run's snapshot can match) and deletes exactly those at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import docker
import pytest

from pytest_kindcluster import KindCluster
from tests.support import KIND_INSTALL_HINT, SESSIONS, find_kind_cli, run_session, unique

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


def config_file(tmp_path: Path, workers: int = 0, *, control_planes: int = 1) -> Path:
    """A kind config whose node label makes the snapshot inputs unique to this test."""
    token = unique("snap")
    nodes = ["- role: control-plane\n  labels: {kindcluster-test: " + token + "}\n"]
    nodes += ["- role: control-plane\n"] * (control_planes - 1)
    nodes += ["- role: worker\n"] * workers
    path = tmp_path / f"{token}.yaml"
    path.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n" + "".join(nodes))
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_kindcluster snapshot ...``."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_kindcluster", "snapshot", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=1200,
    )


def listed() -> dict[str, dict[str, Any]]:
    result = cli("list", "--json")
    assert result.returncode == 0, result.stderr
    return {r["id"]: r for r in map(json.loads, result.stdout.splitlines())}


@pytest.fixture
def made() -> Iterator[list[str]]:
    """Snapshot ids this test made; deleted (by id, nobody else's) at the end."""
    ids: list[str] = []
    yield ids
    for snapshot_id in ids:
        if snapshot_id in listed():
            result = cli("delete", snapshot_id)
            assert result.returncode == 0, result.stdout + result.stderr


def record_capture(result: pytest.RunResult, made: list[str]) -> None:
    """The snapshot a session captured, if it did, goes on the list the test deletes."""
    output = result.stdout.str()
    if "capturing snapshot" in output:
        made.append(captured_id(output))


def build(made: list[str], *options: str) -> subprocess.CompletedProcess[str]:
    """``snapshot build`` with these options; it must succeed, and its id goes on ``made``."""
    built = cli("build", *options)
    assert built.returncode == 0, built.stderr
    made.append(built.stdout.splitlines()[-1])
    return built


def captured_id(output: str) -> str:
    found = re.search(r"capturing snapshot ([0-9a-f]{16})", output)
    assert found, output
    return found.group(1)


def assert_nothing_left(client: docker.DockerClient, *names: str) -> None:
    """No container, volume, network or kubeconfig directory of these clusters."""
    for name in names:
        selector: dict[str, str | list[str] | bool] = {"label": f"io.x-k8s.kind.cluster={name}"}
        assert client.containers.list(all=True, filters=selector) == []
        assert client.volumes.list(filters=selector) == []
        assert client.networks.list(names=[f"kindcluster-{name}"]) == []
        assert list(Path(tempfile.gettempdir()).glob(f"kindcluster-{name}-*")) == []


def capture_cluster_of(snapshot_id: str) -> str:
    return f"kc-snap-{snapshot_id[:10]}"


def test_a_session_captures_and_boots_then_the_next_ones_boot_or_reuse(
    pytester: pytest.Pytester,
    node_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    made: list[str],
) -> None:
    config = config_file(tmp_path)
    first, second = unique("it-snap-a"), unique("it-snap-b")
    try:
        result = run_session(
            pytester, "snapshot_clone.py", f"--kind-name={first}", "--kind-snapshot",
            f"--kind-config={config}", "--kind-retain=always",
        )  # fmt: skip
        record_capture(result, made)
        result.assert_outcomes(passed=8)
        sid = made[0]
        result.stdout.fnmatch_lines(
            [
                f"kind {first}: created cold: no snapshot for these inputs; capturing snapshot "
                f"{sid} from {capture_cluster_of(sid)}",
                f"kind {capture_cluster_of(sid)}: kubeadm-init *s",
                f"kind {capture_cluster_of(sid)}: capture *s",
                f"kind {first}: snapshot {sid} captured in *s (* MB)",
                f"kind {first}: nodes+rewrite *s",
                f"kind {first}: booted from snapshot {sid} (created *s ago)",
                f"kind {first}: ready in *s",
                f"kind {first}: kept (retain=always); kubeconfig: *",
            ]
        )
        # Reuse: a retained clone is attached to, not booted again.
        reused = run_session(
            pytester, "snapshot_clone.py", f"--kind-name={first}", "--kind-snapshot",
            f"--kind-config={config}", "--kind-reuse",
        )  # fmt: skip
        reused.assert_outcomes(passed=8)
        reused.stdout.fnmatch_lines([f"kind {first}: reused and ready in *s"])
        assert "booted from snapshot" not in reused.stdout.str()
        KindCluster(first).delete()
        assert_nothing_left(docker_client, first, capture_cluster_of(sid))

        # The next session boots from the snapshot at once: no kubeadm, no capture.
        booted = run_session(
            pytester, "snapshot_clone.py", f"--kind-name={second}", "--kind-snapshot",
            f"--kind-config={config}",
        )  # fmt: skip
        booted.assert_outcomes(passed=8)
        booted.stdout.fnmatch_lines(
            [
                f"kind {second}: booted from snapshot {sid} (created * ago)",
                "*= kind clusters =*",
                f"kind {second}: preflight *s, network *s, nodes+rewrite *s, kubeconfig *s, "
                "ready *s",
                f"kind {second}: deleted",
            ]
        )
        assert "created cold" not in booted.stdout.str()
        assert "kubeadm-init" not in booted.stdout.str()
        assert_nothing_left(docker_client, second)
        # The snapshot is the only thing kept: listed with its inputs, deleted by the CLI.
        record = listed()[sid]
        assert record["status"] == "ok"
        assert record["topology"] == "1 control plane"
        assert record["config_file"] == str(config)
        assert record["size_bytes"] > 100e6
        assert cli("delete", sid).stdout == f"deleted snapshot {sid}\n"
        assert sid not in listed()
        assert docker_client.images.list(name="pytest-kindcluster/snapshot", filters={
            "label": f"dev.pytest-kindcluster.snapshot={sid}"}) == []  # fmt: skip
    finally:
        for name in (first, second):
            KindCluster(name).delete()


def test_one_plus_two_workers_from_their_snapshot(
    pytester: pytest.Pytester,
    node_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    made: list[str],
) -> None:
    config = config_file(tmp_path, workers=2)
    name = unique("it-snap-multi")
    try:
        result = run_session(
            pytester, "snapshot_clone.py", f"--kind-name={name}", "--kind-snapshot",
            f"--kind-config={config}",
        )  # fmt: skip
        record_capture(result, made)
        result.assert_outcomes(passed=8)
        result.stdout.fnmatch_lines(
            [
                f"kind {name}: booted from snapshot {made[0]} (created *s ago)",
                f"kind {name}: deleted",
            ]
        )
        assert_nothing_left(docker_client, name, capture_cluster_of(made[0]))
        record = listed()[made[0]]
        assert record["topology"] == "1 control plane + 2 workers"
        assert sorted(n["role"] for n in record["nodes"]) == ["control-plane", "worker", "worker"]
    finally:
        KindCluster(name).delete()


def test_two_sessions_from_one_snapshot_at_once_are_independent(
    pytester: pytest.Pytester,
    node_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    made: list[str],
    *,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = config_file(tmp_path)
    built = build(made, f"--kind-config={config}")
    sid = made[-1]
    assert "created cold: no snapshot for these inputs" in built.stderr
    assert (
        cli("build", f"--kind-config={config}")
        .stderr.strip()
        .endswith(f"snapshot {sid} exists already")
    )

    records = tmp_path / "records"
    records.mkdir()
    env = {**os.environ, "KIND_SNAPSHOT_RECORD_DIR": str(records), "KIND_SNAPSHOT_PEERS": "2"}
    names = [unique("it-snap-x"), unique("it-snap-y")]

    def argv(name: str) -> list[str]:
        return [
            sys.executable, "-m", "pytest", str(SESSIONS / "snapshot_clone.py"), "-v",
            "-p", "no:cacheprovider", "-p", "no:randomly", f"--kind-name={name}",
            "--kind-snapshot", f"--kind-config={config}", f"--basetemp={tmp_path / name}",
        ]  # fmt: skip

    sessions = [
        subprocess.Popen(
            argv(name),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in names
    ]
    try:
        outputs = [session.communicate(timeout=1500)[0] for session in sessions]
    finally:
        for session in sessions:
            session.kill()
        for name in names:
            KindCluster(name).delete()
    for name, output, session in zip(names, outputs, sessions, strict=True):
        assert session.returncode == 0, output
        assert f"kind {name}: booted from snapshot {sid} (created " in output
        assert "created cold" not in output
    got = [json.loads((records / f"{name}.json").read_text()) for name in names]
    assert [g["name"] for g in got] == names
    assert got[0]["hostname"] == got[1]["hostname"]  # the same node inside...
    assert got[0]["networks"] != got[1]["networks"]  # ...on networks of their own
    assert got[0]["port"] != got[1]["port"]
    assert got[0]["kubeconfig"] != got[1]["kubeconfig"]
    assert_nothing_left(docker_client, *names)

    # xdist: the first worker boots it under the lock, the other attaches; the controller
    # deletes it.
    xdist = unique("it-snap-xdist")
    monkeypatch.setenv("KIND_XDIST_RECORD_DIR", str(tmp_path))
    result = run_session(
        pytester, "xdist_shared.py", f"--kind-name={xdist}", "-n", "2", "--kind-snapshot",
        f"--kind-config={config}",
    )  # fmt: skip
    result.assert_outcomes(passed=4)
    xdist_records = [json.loads(p.read_text()) for p in tmp_path.glob("?.json")]
    assert len(xdist_records) == 4
    assert len({r["worker"] for r in xdist_records if not r["attached"]}) == 1  # one booted it
    result.stdout.fnmatch_lines(
        [
            f"kind {xdist}: *rewrite *s*",
            f"kind {xdist}: booted from snapshot {sid} (created *",
            f"kind {xdist}: ready in *s (created by an xdist worker)",
            f"kind {xdist}: deleted",
        ]
    )
    assert_nothing_left(docker_client, xdist)


def test_several_control_planes_are_refused_up_front(
    pytester: pytest.Pytester, node_image: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    config = config_file(tmp_path, control_planes=3)
    name = unique("it-snap-ha")
    result = run_session(
        pytester, "snapshot_clone.py", f"--kind-name={name}", "--kind-snapshot",
        f"--kind-config={config}",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*snapshots support one control plane, this config has 3*"])
    assert "kind issue 1689" in result.stderr.str()
    assert_nothing_left(docker_client, name)


def test_a_snapshot_that_fails_to_boot_is_said_and_the_cluster_created_cold(
    pytester: pytest.Pytester,
    node_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    made: list[str],
) -> None:
    config = config_file(tmp_path)
    build(made, f"--kind-config={config}")
    sid = made[-1]
    # Break it: the control plane's image loses the file every kind node image has, under the
    # same tag and labels, so it is found and then fails at once when it boots.
    ref = f"pytest-kindcluster/snapshot:{sid}-control-plane"
    broken = f"FROM {ref}\nRUN rm /kind/version\n"
    docker_client.images.build(fileobj=BytesIO(broken.encode()), tag=ref, rm=True, pull=False)
    name = unique("it-snap-broken")
    try:
        result = run_session(
            pytester, "needs_cluster.py", f"--kind-name={name}", "--kind-snapshot",
            f"--kind-config={config}",
        )  # fmt: skip
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                f"kind {name}: created cold: snapshot {sid} failed to boot: *has no /kind/version*"
                "(removed it) (logs: *)",
                f"kind {name}: kubeadm-init *s",
                f"kind {name}: ready in *s",
                f"kind {name}: deleted",
            ]
        )
        assert "booted from snapshot" not in result.stdout.str()
        assert sid not in listed()
        assert_nothing_left(docker_client, name)
    finally:
        KindCluster(name).delete()


def test_a_stale_snapshot_is_named_and_a_new_one_made(
    pytester: pytest.Pytester,
    node_image: str,
    docker_client: docker.DockerClient,
    tmp_path: Path,
    made: list[str],
) -> None:
    """The node image is rebuilt under the same tag: its snapshot no longer matches."""
    tag = f"kindcluster-test/node:{unique('v')}"
    docker_client.images.get(node_image).tag(tag)
    config = config_file(tmp_path)
    name = unique("it-snap-stale")
    try:
        build(made, f"--kind-config={config}", f"--kind-image={tag}")
        old = made[-1]
        rebuilt = f"FROM {node_image}\nLABEL kindcluster-test.rebuilt={name}\n"
        docker_client.images.build(fileobj=BytesIO(rebuilt.encode()), tag=tag, rm=True, pull=False)
        assert listed()[old]["status"] == f"node image {tag} was rebuilt"  # what prune removes

        result = run_session(
            pytester, "needs_cluster.py", f"--kind-name={name}", "--kind-snapshot",
            f"--kind-config={config}", f"--kind-image={tag}",
        )  # fmt: skip
        record_capture(result, made)
        result.assert_outcomes(passed=1)
        new = made[-1]
        assert new != old
        result.stdout.fnmatch_lines(
            [
                f"kind {name}: created cold: no snapshot for these inputs (snapshot {old} is "
                f"stale: node image {tag} is now sha256:*, was sha256:*; "
                "`python -m pytest_kindcluster snapshot prune` removes it); capturing snapshot "
                f"{new} from *",
                f"kind {name}: booted from snapshot {new} (created *s ago)",
            ]
        )
        assert_nothing_left(docker_client, name, capture_cluster_of(new))
    finally:
        KindCluster(name).delete()
        for snapshot_id in made:
            cli("delete", snapshot_id)
        made.clear()
        docker_client.images.remove(tag, force=True)


@pytest.mark.kindproof
def test_the_kind_cli_lists_exports_and_deletes_a_clone(
    node_image: str, docker_client: docker.DockerClient, tmp_path: Path, made: list[str]
) -> None:
    """kind's labels on a clone booted through the library API; kind leaves the network."""
    kind_cli = find_kind_cli()
    if kind_cli is None:
        pytest.fail(f"the kind CLI is not installed; run: {KIND_INSTALL_HINT}")

    def kind(*args: str) -> str:
        done = subprocess.run([kind_cli, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"kind {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout + done.stderr

    name = unique("it-snap-kind")
    cluster = KindCluster(name, config=config_file(tmp_path), snapshot=True, retain="always")
    try:
        cluster.create()
        made.append(find_snapshot_of(cluster))
        assert name in kind("get", "clusters").split()
        assert kind("get", "nodes", "--name", name).split() == [f"{name}-control-plane"]
        kind("export", "logs", str(tmp_path / "logs"), "--name", name)
        assert (tmp_path / "logs" / f"{name}-control-plane" / "kubelet.log").stat().st_size > 0
        cluster.detach()
        kind("delete", "cluster", "--name", name, "--kubeconfig", str(tmp_path / "kubeconfig"))
        assert (
            docker_client.containers.list(
                all=True, filters={"label": f"io.x-k8s.kind.cluster={name}"}
            )
            == []
        )
        assert [n.name for n in docker_client.networks.list(names=[f"kindcluster-{name}"])] == [
            f"kindcluster-{name}"
        ]  # kind does not know the clone's network ...
    finally:
        KindCluster(name).delete()  # ... deleting the cluster through the plugin removes it
    assert_nothing_left(docker_client, name)


def find_snapshot_of(cluster: KindCluster) -> str:
    """The snapshot a cluster booted from, from its control plane's image."""
    image = cluster.nodes[0].details().image
    assert image.startswith("pytest-kindcluster/snapshot:"), image
    return image.split(":", 1)[1].split("-", 1)[0]
