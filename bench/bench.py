"""Time to strict readiness: the kind CLI, the plugin cold, and the plugin from a snapshot.

    python -m bench.bench --runs 3                 # 1 node and 1 + 2 nodes, all three tools
    python -m bench.bench --runs 1 --workers 0     # a quick single-node comparison
    python -m bench.bench --skip-kind              # the plugin only

Everything runs in this one process, one cluster at a time, and the tools alternate (their order
rotates every round), so none of them always meets a cold or a warm cache. Every tool is held to
the same, strict readiness: ``/readyz``, every node Ready, CoreDNS available and the default
ServiceAccount. The plugin checks that itself; for the kind CLI, ``kind create cluster --wait``
is followed by the plugin's own checks (``kube/readiness.py``) through kind's kubeconfig. From a
snapshot, the plugin counts only status posted after the boot.

Before the rounds of a topology, the snapshot its runs boot from is captured, and the capture is
timed (a cold create, the capture itself, the deletion) and sized. All three tools create the same
cluster: a control-plane label unique to this run keeps the snapshot apart from any other (it is
deleted at the end, unless ``--keep-snapshots``). On a cgroup v1 host kind gets the
``failCgroupV1: false`` patch it does not add itself, or kubelet >= 1.35 would not run.

Prints every run's phases, the medians, the ratios to kind, teardown times, the capture's time and
size, and the peak RSS of this process (the plugin runs in it; kind is a child process).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_kindcluster import KindCluster
from pytest_kindcluster.cluster.snapshot import Snapshot, delete
from pytest_kindcluster.cluster.warm import build_snapshot, snapshot_store_of
from pytest_kindcluster.config import ClusterConfig, NodeConfig
from pytest_kindcluster.config.model import frozen_map
from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from pytest_kindcluster.kube import kubeconfig, readiness
from pytest_kindcluster.provision import ClusterSpec
from pytest_kindcluster.runtime import connect_engine
from pytest_kindcluster.util.progress import LogProgress, PhaseTiming
from tests.support import find_kind_cli, kind_cli_config

TOOLS = ("kind", "cold", "snapshot")
# The targets the figures are held to (ratios of strict-ready medians to kind's, and seconds).
RATIO_TARGETS = {("snapshot", 0): 0.35, ("snapshot", 2): 0.40, ("cold", 0): 0.80, ("cold", 2): 0.80}
TEARDOWN_TARGET = 2.0  # seconds, one node


@dataclass
class Run:
    """One create-ready-delete cycle."""

    tool: str
    workers: int
    ready: float
    delete: float
    phases: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Capture:
    """The snapshot a topology's runs boot from, and what making it cost."""

    workers: int
    seconds: float  # cold create + capture + deletion of the capture cluster
    capture_phase: float  # the capture alone
    size: int
    snapshot: Snapshot


def plugin_config(workers: int, label: str) -> ClusterConfig:
    """The bench cluster as the plugin's config (the same as kind_cli_config's)."""
    control_plane = NodeConfig(labels=frozen_map({"kindcluster-bench": label}))
    return ClusterConfig(
        nodes=(control_plane, *(NodeConfig(role="worker") for _ in range(workers)))
    )


def run_plugin(image: str, workers: int, label: str, *, snapshot: bool) -> Run:
    """Create (cold or from the snapshot), wait for strict readiness, delete: in this process."""
    name = f"bench-{'snap' if snapshot else 'cold'}-{secrets.token_hex(3)}"
    config = plugin_config(workers, label)
    cluster = KindCluster(name, image=image, config=config, snapshot=snapshot)
    try:
        cluster.create()
        assert cluster.ready_seconds is not None
        ready = cluster.ready_seconds
        phases = [(t.name, t.seconds) for t in cluster.timings]
        phases += [(f"({check} at", seconds) for check, seconds in cluster.checks_passed.items()]
        if snapshot and any(name == "kubeadm-init" for name, _ in phases):
            raise RuntimeError(f"{name} fell back to a cold create; its figures are not a boot's")
    finally:
        started = time.monotonic()
        cluster.delete()
        deleted = time.monotonic() - started
    return Run("snapshot" if snapshot else "cold", workers, ready, deleted, phases)


def run_kind(kind: str, image: str, workers: int, label: str, cgroup_v1: bool) -> Run:
    """``kind create cluster --wait``, then the same strict checks as the plugin's, then delete."""
    name = f"bench-kind-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="bench-kind-") as tmp:
        config = Path(tmp) / "kind.yaml"
        labels = {"kindcluster-bench": label}
        config.write_text(kind_cli_config(workers, cgroup_v1=cgroup_v1, labels=labels))
        path = Path(tmp) / "kubeconfig"
        argv = [
            kind, "create", "cluster", "--name", name, "--image", image, "--config", str(config),
            "--wait", "5m", "--kubeconfig", str(path),
        ]  # fmt: skip
        phases: list[tuple[str, float]] = []
        started = time.monotonic()
        last = started
        try:
            with subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            ) as proc:
                assert proc.stdout is not None
                output = []
                for line in proc.stdout:
                    output.append(line)
                    # Non-TTY kind prints " ✓ <phase>" when a phase ends.
                    if line.lstrip().startswith("✓"):
                        now = time.monotonic()
                        phases.append((line.strip(" ✓\n").split(" (")[0][:28], now - last))
                        last = now
            if proc.returncode != 0:
                raise RuntimeError(f"kind create failed ({proc.returncode}):\n{''.join(output)}")
            returned = time.monotonic()
            api: Any = kubeconfig.api_client(path)
            try:
                first_ok = readiness.wait_ready(api, expected_nodes=1 + workers, timeout=300)
            finally:
                api.close()
            ready = time.monotonic() - started
            phases.append(("strict checks after --wait", ready - (returned - started)))
            phases += [(f"({check} at", seconds) for check, seconds in first_ok.items()]
        finally:
            deleting = time.monotonic()
            subprocess.run(
                [kind, "delete", "cluster", "--name", name, "--kubeconfig", str(path)],
                capture_output=True,
                check=False,
            )
            deleted = time.monotonic() - deleting
    return Run("kind", workers, ready, deleted, phases)


def capture(image: str, workers: int, label: str) -> Capture:
    """Make the snapshot the topology's runs boot from, timing it."""
    spec = ClusterSpec("bench-capture", image, config=plugin_config(workers, label))
    engine = connect_engine()
    logs_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    started = time.monotonic()
    snapshot, made = build_snapshot(
        spec, engine, progress=TimedProgress(), logs_dir=lambda: logs_dir / spec.name
    )
    seconds = time.monotonic() - started
    if not made:
        raise RuntimeError(f"snapshot {snapshot.id} existed already: its capture was not timed")
    return Capture(workers, seconds, TimedProgress.last_capture, snapshot.size, snapshot)


class TimedProgress(LogProgress):
    """Logs as the library does, and keeps the duration of the last "capture" phase."""

    last_capture = 0.0

    def phase_finished(self, cluster: str, timing: PhaseTiming) -> None:
        """Log it; remember the capture's."""
        super().phase_finished(cluster, timing)
        if timing.name == "capture":
            TimedProgress.last_capture = timing.seconds


def median(runs: list[Run], tool: str, workers: int, attr: str = "ready") -> float | None:
    """The median of one tool's runs for one topology, or None without runs."""
    values = [getattr(r, attr) for r in runs if r.tool == tool and r.workers == workers]
    return statistics.median(values) if values else None


def report(runs: list[Run], captures: list[Capture]) -> None:
    """Every run, then per topology: medians, ratios to kind, teardowns, the capture."""
    for run in runs:
        phases = ", ".join(
            f"{name} {seconds:.1f}s" + (")" if name.startswith("(") else "")
            for name, seconds in run.phases
        )
        print(
            f"{run.tool:8} 1+{run.workers}: ready {run.ready:6.1f}s, delete {run.delete:4.1f}s"
            f"  [{phases}]"
        )
    print()
    for workers in sorted({r.workers for r in runs}):
        ready = {tool: median(runs, tool, workers) for tool in TOOLS}
        teardown = {tool: median(runs, tool, workers, "delete") for tool in TOOLS}
        count = {tool: sum(r.tool == tool and r.workers == workers for r in runs) for tool in TOOLS}
        for tool in TOOLS:
            if ready[tool] is not None:
                print(
                    f"median {tool:8} 1+{workers}: ready {ready[tool]:5.1f}s, teardown "
                    f"{teardown[tool]:4.1f}s over {count[tool]} run(s)"
                )
        kind = ready["kind"]
        for tool in ("snapshot", "cold"):
            value = ready[tool]
            if kind and value is not None:
                limit = RATIO_TARGETS.get((tool, workers))
                met = "met" if limit is not None and value / kind <= limit else "MISSED"
                verdict = "" if limit is None else f" (target <= {limit:.2f}: {met})"
                print(f"ratio {tool}/kind 1+{workers}: {value / kind:.2f}{verdict}")
        if workers == 0:
            for tool in ("cold", "snapshot"):
                value = teardown[tool]
                if value is not None:
                    met = "met" if value <= TEARDOWN_TARGET else "MISSED"
                    print(f"teardown {tool} 1+0: {value:.1f}s (target <= 2s: {met})")
        for cap in (c for c in captures if c.workers == workers):
            print(
                f"snapshot 1+{workers}: made in {cap.seconds:.1f}s (capture phase "
                f"{cap.capture_phase:.1f}s), {cap.size / 1e6:.0f} MB on top of the node image"
            )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS of the plugin process: {peak_kib / 1024:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, capture the snapshots, alternate the tools, print the report."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, action="append", help="repeatable; default 0 and 2")
    parser.add_argument("--image", default=DEFAULT_NODE_IMAGE)
    parser.add_argument("--kind", help="path of the kind CLI")
    parser.add_argument("--skip-kind", action="store_true")
    parser.add_argument(
        "--keep-snapshots", action="store_true", help="do not delete them at the end"
    )
    args = parser.parse_args(argv)

    kind = None if args.skip_kind else (args.kind or find_kind_cli())
    if not args.skip_kind and kind is None:
        parser.error("kind CLI not found: pass --kind PATH or --skip-kind")
    engine = connect_engine()
    cgroup_v1 = engine.info().cgroup_version == 1
    label = f"run-{secrets.token_hex(4)}"
    tools = [t for t in TOOLS if t != "kind" or kind is not None]
    runs: list[Run] = []
    captures: list[Capture] = []
    try:
        for workers in args.workers or [0, 2]:
            print(f"capture 1+{workers} ...", file=sys.stderr, flush=True)
            captures.append(capture(args.image, workers, label))
            print(f"  made in {captures[-1].seconds:.1f}s", file=sys.stderr, flush=True)
            for i in range(args.runs):
                for tool in tools[i % len(tools) :] + tools[: i % len(tools)]:
                    print(
                        f"run {i + 1}/{args.runs} {tool} 1+{workers} ...",
                        file=sys.stderr,
                        flush=True,
                    )
                    if tool == "kind":
                        assert kind is not None
                        run = run_kind(kind, args.image, workers, label, cgroup_v1)
                    else:
                        run = run_plugin(args.image, workers, label, snapshot=tool == "snapshot")
                    print(f"  ready in {run.ready:.1f}s", file=sys.stderr, flush=True)
                    runs.append(run)
    finally:
        if not args.keep_snapshots:
            store = snapshot_store_of(engine)
            for cap in captures:
                delete(store, cap.snapshot)
    print(f"image {args.image}, {os.cpu_count()} CPUs, cgroup v{2 - int(cgroup_v1)}")
    report(runs, captures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
