"""--kind-snapshot against the in-memory engine: capture once, boot clones, fall back to cold.

Readiness is stubbed as in test_create_flow.py; the real thing runs in
tests/integration/test_snapshots.py.
"""

from __future__ import annotations

import shlex
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from pytest_kindcluster.cluster.capture import SNAPSHOTS_DIR, SNAPSHOTS_KEPT_IN
from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.cluster.snapshot import list_snapshots
from pytest_kindcluster.config import ClusterConfig, NodeConfig
from pytest_kindcluster.contract import CLUSTER_LABEL, SNAPSHOT_NETWORK_LABEL
from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.provision.restore import (
    KUBELET_GATE_FILE,
    PENDING_FILE,
    REWRITE_SCRIPT,
)
from pytest_kindcluster.runtime.fake import FakeRuntime
from pytest_kindcluster.util.progress import PhaseTiming


class Recorder:
    """A Progress that keeps every line, as the terminal would show them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def phase_started(self, cluster: str, phase: str) -> None:
        pass

    def phase_finished(self, cluster: str, timing: PhaseTiming) -> None:
        self.lines.append(f"{cluster}: {timing.name}")

    def note(self, cluster: str, text: str) -> None:
        self.lines.append(f"{cluster}: {text}")

    def notes(self, cluster: str) -> list[str]:
        return [
            line.removeprefix(f"{cluster}: ") for line in self.lines if line.startswith(cluster)
        ]


class Like(list[str]):
    """Lines compared with fnmatch patterns (``*`` for durations)."""

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, list)
            and len(other) == len(self)
            and all(fnmatch(str(line), pattern) for line, pattern in zip(other, self, strict=True))
        )

    __hash__ = None


def start_script(fake: FakeRuntime, node: str) -> str:
    """The script that bridges the apiserver's Service and starts the kubelet on ``node``."""
    (argv,) = [c for c in fake.commands(node) if c[0] == "timeout"]
    assert argv[2:4] == ("sh", "-c")
    return argv[4]


def nat_rules(script: str, action: str) -> list[list[str]]:
    """The iptables rules a script adds (``-I``) or deletes (``-D``), without the prefix."""
    prefix = ["iptables", "-t", "nat", action]
    lines = [shlex.split(line) for line in script.splitlines() if line.startswith("iptables")]
    return [words[4:] for words in lines if words[:4] == prefix]


def make(
    fake: FakeRuntime, tmp_path: Path, name: str, progress: Recorder, **kw: Any
) -> KindCluster:
    return KindCluster(
        name,
        runtime=fake,
        images=fake,
        run_id="run1",
        snapshot=True,
        progress=progress,
        kubeconfig=tmp_path / name / "kubeconfig",
        logs_dir=tmp_path / "logs",
        **kw,
    )


def test_first_use_captures_then_boots_and_the_next_one_only_boots(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    store = fake.snapshots()
    progress = Recorder()
    first = make(fake, tmp_path, "demo", progress).create()

    (snapshot,) = list_snapshots(store)
    sid, capture = snapshot.id, f"kc-snap-{snapshot.id[:10]}"
    cp = f"{capture}-control-plane"
    # Durations and ages vary with the machine: compare them as patterns.
    assert progress.notes("demo")[1:] == Like([
        f"created cold: no snapshot for these inputs; capturing snapshot {sid} from {capture}",
        f"snapshot {sid} captured in *s (0 MB)",
        "preflight", "network", "nodes+rewrite", "kubeconfig", "checks passed after: ", "ready",
        f"booted from snapshot {sid} (created *s ago)",
        "ready in *s",
    ])  # fmt: skip
    assert progress.notes(capture)[-2:] == ["ready", "capture"]
    assert first.warm_start is not None
    assert first.warm_start.startswith(f"booted from snapshot {sid} (created ")
    # The capture cluster was quiesced, stopped and captured with the kubelet gate, then removed.
    assert ("systemctl", "stop", "kubelet") in fake.commands(cp)
    assert ("crictl", "rmp", "--force", "--all") in fake.commands(cp)
    assert store.stopped == [cp]
    ((node, ref, extra),) = store.captures
    assert (node, ref) == (cp, f"pytest-kindcluster/snapshot:{sid}-control-plane")
    assert set(extra) == {PENDING_FILE, KUBELET_GATE_FILE}
    # No active containerd snapshot was reported, so the unpacked layers stay in the image.
    assert store.moves == [{SNAPSHOTS_DIR: SNAPSHOTS_KEPT_IN}]
    assert not [c for c in fake.containers if c.startswith(capture)]

    # The clone: named after the session's cluster, in-cluster name kept, own network.
    clone = fake.containers["demo-control-plane"]
    assert clone.spec.image == ref
    assert (clone.spec.hostname, clone.spec.aliases) == (cp, (cp,))
    assert clone.spec.network == "kindcluster-demo"
    assert clone.labels[CLUSTER_LABEL] == "demo"
    network = fake.networks["kindcluster-demo"]
    assert network[SNAPSHOT_NETWORK_LABEL] == "true"
    assert network[CLUSTER_LABEL] == "demo"
    start = start_script(fake, "demo-control-plane")
    # NAT rules first, then the kubelet's gate goes (the kubelet waits for that, KUBELET_GATE).
    assert start.index("iptables") < start.index(f"rm -f {PENDING_FILE}")
    assert (
        f"ExecStartPre=/bin/sh -c 'while [ -e {PENDING_FILE} ]" in extra[KUBELET_GATE_FILE].decode()
    )
    dnat = nat_rules(start, "-I")
    assert [rule[0] for rule in dnat] == [
        "OUTPUT",
        "PREROUTING",
    ]  # no MASQUERADE on a control plane
    assert all("10.96.0.1/32" in rule and f"{clone.ip}:6443" in rule for rule in dnat)
    removed = [c for c in fake.commands("demo-control-plane") if c[:2] == ("sh", "-c")]
    assert [rule[0] for rule in nat_rules(removed[-1][2], "-D")] == ["OUTPUT", "PREROUTING"]
    # Readiness: the capture cluster as a cold one, the clone on evidence from after its boot.
    assert "since" not in ready_calls[0]
    assert ready_calls[1]["since"] is not None

    first.delete()
    # The capture's cold cluster used the shared network, which stays, as kind leaves it; the
    # restored cluster's own network went with it.
    assert fake.containers == {}
    assert fake.networks == {"kind": {}}
    assert [s.id for s in list_snapshots(store)] == [sid]  # the snapshot stays


def test_a_second_cluster_boots_beside_the_first_with_its_address_rewritten(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    store = fake.snapshots()
    first = make(fake, tmp_path, "demo", Recorder()).create()
    (snapshot,) = list_snapshots(store)
    sid = snapshot.id
    ((_, _, extra),) = store.captures
    # A second cluster, while the first runs: booted from the same snapshot, nothing captured;
    # its node has another address, which replaces the captured one.
    second_progress = Recorder()
    second = make(fake, tmp_path, "other", second_progress).create()
    assert len(store.captures) == 1
    assert not any("created cold" in line for line in second_progress.lines)
    assert any(
        fnmatch(n, f"booted from snapshot {sid} (created *s ago)")
        for n in second_progress.notes("other")
    )
    new_ip = fake.containers["other-control-plane"].ip
    captured_ip = extra[PENDING_FILE].decode().strip()
    assert new_ip != captured_ip
    rewrite = ("bash", "-c", REWRITE_SCRIPT, "rewrite", captured_ip, new_ip, "control-plane")
    assert rewrite in fake.commands("other-control-plane")

    first.delete()
    second.delete()
    assert fake.containers == {}


def test_workers_get_masquerading_too(tmp_path: Path, ready_calls: list[dict[str, Any]]) -> None:
    fake = FakeRuntime()
    make(fake, tmp_path, "demo", Recorder(), workers=1).create()
    worker = nat_rules(start_script(fake, "demo-worker"), "-I")
    assert [rule[0] for rule in worker] == ["OUTPUT", "PREROUTING", "POSTROUTING"]
    assert worker[-1][-2:] == ["-j", "MASQUERADE"]
    assert fake.containers["demo-worker"].spec.hostname.endswith("-worker")


def test_a_snapshot_that_fails_to_boot_is_said_removed_and_the_cluster_made_cold(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    make(fake, tmp_path, "first", Recorder()).create().delete()
    (snapshot,) = list_snapshots(fake.snapshots())
    fake.fail(("timeout",), exit_code=124, output="unit kubelet masked")
    progress = Recorder()
    cluster = make(fake, tmp_path, "demo", progress).create()
    notes = progress.notes("demo")
    failed = next(n for n in notes if n.startswith("created cold:"))
    assert cluster.warm_start == failed
    assert failed.startswith(f"created cold: snapshot {snapshot.id} failed to boot: ")
    assert "unit kubelet masked" in failed
    assert "(removed it) (logs: " in failed
    assert "booted from snapshot" not in " ".join(notes)
    assert fnmatch(notes[-1], "ready in *s")
    # The cold cluster runs from the node image on the shared network; nothing of the boot stays.
    (node,) = cluster.nodes
    assert fake.containers[node.name].spec.image == "pytest-kindcluster/node:v1.37.2"
    assert fake.containers[node.name].spec.network == "kind"
    assert "kindcluster-demo" not in fake.networks
    assert list_snapshots(fake.snapshots()) == []


def test_a_snapshot_whose_inputs_do_not_match_is_said_and_made_again(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    make(fake, tmp_path, "first", Recorder()).create().delete()
    store = fake.snapshots()
    (image,) = store.stored.values()
    # Same id, but its labels name another node image ID (as if the id collided).
    inputs = image.labels["dev.pytest-kindcluster.snapshot.inputs"].replace("sha256:node", "x")
    store.stored[image.ref] = type(image)(
        image.ref,
        image.image_id,
        {**image.labels, "dev.pytest-kindcluster.snapshot.inputs": inputs},
        1,
    )
    progress = Recorder()
    make(fake, tmp_path, "demo", progress).create()
    notes = progress.notes("demo")
    assert any("does not match its inputs (node image" in n and "removing it" in n for n in notes)
    assert any(n.startswith("created cold: no snapshot for these inputs") for n in notes)
    assert len(store.captures) == 2


def test_several_control_planes_are_refused_before_anything_runs(tmp_path: Path) -> None:
    fake = FakeRuntime()
    ha = ClusterConfig(nodes=(NodeConfig(), NodeConfig(), NodeConfig(role="worker")))
    with pytest.raises(ConfigError, match="kind issue 1689"):
        make(fake, tmp_path, "demo", Recorder(), config=ha)
    assert fake.calls == []


def test_an_engine_without_snapshots_is_a_config_error(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    class Plain(FakeRuntime):
        snapshots = None  # type: ignore[assignment]  # an engine that cannot hold snapshots

    fake = Plain()
    with pytest.raises(ConfigError, match="cannot hold snapshots; run without --kind-snapshot"):
        make(fake, tmp_path, "demo", Recorder()).create()
    assert fake.containers == {}
