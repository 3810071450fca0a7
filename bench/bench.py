"""Time to ready: pytest-kindcluster against the upstream kind CLI, on the same node image.

    python -m bench.bench --runs 3                 # 1 node and 1 + 2 nodes, plugin and kind
    python -m bench.bench --runs 1 --workers 0     # a quick single-node comparison
    python -m bench.bench --skip-kind              # the plugin only

Each run creates a cluster, waits until it is ready, and deletes it; plugin and kind runs
alternate, so neither always meets a cold or a warm cache. The plugin is "ready" when /readyz,
every node, CoreDNS and the default ServiceAccount are good; kind is "ready" when
``kind create cluster --wait`` returns (control-plane nodes Ready only), so the comparison
favours kind. kind's phases are timed from its own progress lines. On a cgroup v1 host kind
gets the ``failCgroupV1: false`` patch it does not add itself, or kubelet >= 1.35 would not run.

Prints every run's phases, the medians, the ratio plugin/kind, and the peak RSS of this
process (the plugin runs in it; kind is a child process and is not counted).
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

from pytest_kindcluster import KindCluster
from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from pytest_kindcluster.runtime import connect_engine
from tests.support import find_kind_cli, kind_cli_config


@dataclass
class Run:
    """One create-ready-delete cycle."""

    tool: str
    workers: int
    ready: float
    delete: float
    phases: list[tuple[str, float]] = field(default_factory=list)
    # The plugin's time to kind's own criterion (nodes Ready), for a like-for-like comparison.
    nodes_ready: float | None = None


def run_plugin(image: str, workers: int) -> Run:
    """Create, wait for strict readiness, delete: all in this process."""
    name = f"bench-plugin-{secrets.token_hex(3)}"
    cluster = KindCluster(name, image=image, workers=workers)
    try:
        cluster.create()
        assert cluster.ready_seconds is not None
        ready = cluster.ready_seconds
        phases = [(t.name, t.seconds) for t in cluster.timings]
        phases += [(f"({check} at", seconds) for check, seconds in cluster.checks_passed.items()]
        ready_phase = cluster.timings[-1].seconds
        nodes_ready = ready - ready_phase + cluster.checks_passed["nodes Ready"]
    finally:
        started = time.monotonic()
        cluster.delete()
        deleted = time.monotonic() - started
    return Run("plugin", workers, ready, deleted, phases, nodes_ready)


def run_kind(kind: str, image: str, workers: int, cgroup_v1: bool) -> Run:
    """``kind create cluster --wait``, timing each of its progress lines, then delete."""
    name = f"bench-kind-{secrets.token_hex(3)}"
    with tempfile.TemporaryDirectory(prefix="bench-kind-") as tmp:
        config = Path(tmp) / "kind.yaml"
        config.write_text(kind_cli_config(workers, cgroup_v1=cgroup_v1))
        kubeconfig = str(Path(tmp) / "kubeconfig")
        argv = [
            kind,
            "create",
            "cluster",
            "--name",
            name,
            "--image",
            image,
            "--config",
            str(config),
            "--wait",
            "5m",
            "--kubeconfig",
            kubeconfig,
        ]
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
            ready = time.monotonic() - started
            if proc.returncode != 0:
                raise RuntimeError(f"kind create failed ({proc.returncode}):\n{''.join(output)}")
        finally:
            deleting = time.monotonic()
            subprocess.run(
                [kind, "delete", "cluster", "--name", name, "--kubeconfig", kubeconfig],
                capture_output=True,
                check=False,
            )
            deleted = time.monotonic() - deleting
    return Run("kind", workers, ready, deleted, phases)


def report(runs: list[Run]) -> None:
    """Every run, then medians and the ratio per topology."""
    for run in runs:
        phases = ", ".join(
            f"{name} {seconds:.1f}s" + (")" if name.startswith("(") else "")
            for name, seconds in run.phases
        )
        print(
            f"{run.tool:6} 1+{run.workers}: ready {run.ready:6.1f}s, delete {run.delete:4.1f}s"
            f"  [{phases}]"
        )
    print()
    for workers in sorted({r.workers for r in runs}):
        medians = {}
        for tool in ("plugin", "kind"):
            ready = [r.ready for r in runs if r.tool == tool and r.workers == workers]
            if ready:
                medians[tool] = statistics.median(ready)
                count = len(ready)
                print(f"median {tool:6} 1+{workers}: ready {medians[tool]:.1f}s over {count} runs")
        equivalent = [r.nodes_ready for r in runs if r.workers == workers and r.nodes_ready]
        if equivalent:
            medians["nodes"] = statistics.median(equivalent)
            print(f"median plugin 1+{workers}: all nodes Ready at {medians['nodes']:.1f}s")
        if "plugin" in medians and "kind" in medians:
            print(f"ratio plugin/kind 1+{workers}: {medians['plugin'] / medians['kind']:.2f}")
            print(
                f"ratio plugin/kind 1+{workers}, both to nodes Ready: "
                f"{medians['nodes'] / medians['kind']:.2f}"
            )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS of the plugin process: {peak_kib / 1024:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, alternate plugin and kind runs, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, action="append", help="repeatable; default 0 and 2")
    parser.add_argument("--image", default=DEFAULT_NODE_IMAGE)
    parser.add_argument("--kind", help="path of the kind CLI")
    parser.add_argument("--skip-kind", action="store_true")
    args = parser.parse_args(argv)

    kind = None if args.skip_kind else (args.kind or find_kind_cli())
    if not args.skip_kind and kind is None:
        parser.error("kind CLI not found: pass --kind PATH or --skip-kind")
    cgroup_v1 = connect_engine().info().cgroup_version == 1
    runs: list[Run] = []
    for workers in args.workers or [0, 2]:
        for i in range(args.runs):
            order = ["plugin", "kind"] if i % 2 == 0 else ["kind", "plugin"]
            for tool in order:
                if tool == "kind" and kind is None:
                    continue
                print(
                    f"run {i + 1}/{args.runs} {tool} 1+{workers} ...", file=sys.stderr, flush=True
                )
                run = (
                    run_plugin(args.image, workers)
                    if tool == "plugin"
                    else run_kind(str(kind), args.image, workers, cgroup_v1)
                )
                print(f"  ready in {run.ready:.1f}s", file=sys.stderr, flush=True)
                runs.append(run)
    print(f"image {args.image}, {os.cpu_count()} CPUs, cgroup v{2 - int(cgroup_v1)}")
    report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
