"""``python -m pytest_kindcluster snapshot build|list|delete|prune``.

``build`` takes the options a pytest session takes, so a CI image-caching step can make the
snapshot the test job will use. Progress goes to stderr; ``build`` prints the snapshot id as the
last line of stdout, and ``list --json`` prints one JSON object per snapshot and line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import Timeout

from pytest_kindcluster.cluster.snapshot import (
    Snapshot,
    delete,
    format_age,
    list_snapshots,
    parse_age,
    prune_reason,
    resolve,
    snapshot_lock,
    staleness,
)
from pytest_kindcluster.cluster.warm import (
    CAPTURE_BUDGET,
    build_snapshot,
    snapshot_store_of,
    sweep_networks,
)
from pytest_kindcluster.config import load_config
from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from pytest_kindcluster.errors import ConfigError, KindClusterError
from pytest_kindcluster.provision import ClusterSpec
from pytest_kindcluster.runtime import connect_engine
from pytest_kindcluster.runtime.base import HostImages
from pytest_kindcluster.util.progress import PhaseTiming

COLUMNS = ("ID", "AGE", "SIZE", "TOPOLOGY", "KUBERNETES", "NODE IMAGE", "CONFIG", "STATUS")


class StderrProgress:
    """Phases and notes on stderr, one line each, as the pytest terminal shows them."""

    def phase_started(self, cluster: str, phase: str) -> None:
        """Nothing: a line is written when the phase ends."""

    def phase_finished(self, cluster: str, timing: PhaseTiming) -> None:
        """``kind <name>: <phase> 1.2s``."""
        status = "" if timing.ok else "  FAILED"
        print(f"kind {cluster}: {timing.name:<20} {timing.seconds:6.1f}s{status}", file=sys.stderr)

    def note(self, cluster: str, text: str) -> None:
        """``kind <name>: <text>``."""
        print(f"kind {cluster}: {text}", file=sys.stderr)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``snapshot`` command and its actions."""
    snapshot = sub.add_parser("snapshot", help="snapshots of ready clusters (--kind-snapshot)")
    actions = snapshot.add_subparsers(dest="action", required=True)
    b = actions.add_parser(
        "build",
        help="make the snapshot a session with these options would use",
        description="Create a cluster cold, wait until it is ready, capture it as a snapshot "
        "and delete it. Takes the options of a pytest session; prints the snapshot id last.",
    )
    b.add_argument("--kind-image", default=DEFAULT_NODE_IMAGE, metavar="REF")
    b.add_argument("--kind-workers", type=int, default=0, metavar="N")
    b.add_argument("--kind-config", type=Path, metavar="PATH")
    b.add_argument("--kind-timeout", type=float, default=300.0, metavar="SECONDS")
    b.set_defaults(run=_run_build)
    ls = actions.add_parser("list", help="every snapshot: id, inputs, size, age")
    ls.add_argument("--json", action="store_true", help="one JSON object per snapshot and line")
    ls.set_defaults(run=_run_list)
    rm = actions.add_parser("delete", help="delete snapshots by id (or a unique prefix)")
    rm.add_argument("ids", nargs="+", metavar="ID")
    rm.set_defaults(run=_run_delete)
    prune = actions.add_parser(
        "prune",
        help="delete snapshots no session can use (node image gone or rebuilt, incomplete), "
        "or older than --older-than; and networks that killed runs left behind",
    )
    prune.add_argument("--older-than", type=parse_age, metavar="AGE", help="e.g. 7d, 12h, 30m")
    prune.set_defaults(run=_run_prune)


def _run_build(args: argparse.Namespace) -> int:
    try:
        if args.kind_config is not None and args.kind_workers:
            raise ConfigError("give the workers in the --kind-config file, not --kind-workers")
        config = load_config(args.kind_config) if args.kind_config is not None else None
        spec = ClusterSpec(
            "snapshot",
            args.kind_image,
            args.kind_workers,
            args.kind_timeout,
            config=config,
        )
        engine = connect_engine()
        logs_dir = Path(tempfile.mkdtemp(prefix="kind-logs-"))
        snapshot, made = build_snapshot(
            spec, engine, progress=StderrProgress(), logs_dir=lambda: logs_dir / spec.name
        )
    except KindClusterError as exc:
        print(f"snapshot build failed: {exc}", file=sys.stderr)
        return 1
    if not made:
        print(f"snapshot {snapshot.id} exists already", file=sys.stderr)
    print(snapshot.id)
    return 0


def _run_list(args: argparse.Namespace) -> int:
    try:
        engine = connect_engine()
        snapshots = list_snapshots(snapshot_store_of(engine))
    except KindClusterError as exc:
        print(f"snapshot list failed: {exc}", file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    lines = json_lines(snapshots, engine, now) if args.json else table(snapshots, engine, now)
    for line in lines:
        print(line)
    return 0


def _run_delete(args: argparse.Namespace) -> int:
    try:
        store = snapshot_store_of(connect_engine())
        targets = [resolve(store, text) for text in args.ids]
        status = 0
        with _locked():
            for snapshot in targets:
                in_use = delete(store, snapshot)
                if in_use:
                    status = 1
                    print(
                        f"snapshot {snapshot.id}: kept {', '.join(in_use)}: a container uses "
                        "it (delete the clusters booted from it first)",
                        file=sys.stderr,
                    )
                else:
                    print(f"deleted snapshot {snapshot.id}")
    except KindClusterError as exc:
        print(f"snapshot delete failed: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    return status


def _run_prune(args: argparse.Namespace) -> int:
    try:
        engine = connect_engine()
        store = snapshot_store_of(engine)
        now = datetime.now(UTC)
        status = 0
        with _locked():  # an incomplete snapshot may be one being captured right now
            for snapshot in list_snapshots(store):
                reason = prune_reason(snapshot, engine, args.older_than, now)
                if reason is None:
                    continue
                in_use = delete(store, snapshot)
                if in_use:
                    status = 1
                    print(f"kept snapshot {snapshot.id} ({reason}): a container uses it")
                else:
                    print(f"deleted snapshot {snapshot.id}: {reason}")
        for network in sweep_networks(store, engine):
            print(f"deleted network {network}: its run is gone")
    except KindClusterError as exc:
        print(f"snapshot prune failed: {exc}", file=sys.stderr)
        return 1
    return status


@contextmanager
def _locked() -> Iterator[None]:
    """Wait for a capture in progress (another session's) before removing anything."""
    lock = snapshot_lock(timeout=CAPTURE_BUDGET)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print("waiting for a snapshot capture in progress ...", file=sys.stderr)
        try:
            lock.acquire()
        except Timeout as exc:
            raise KindClusterError(f"a snapshot capture held the lock for {exc}") from exc
    try:
        yield
    finally:
        lock.release()


def describe(snapshot: Snapshot, images: HostImages, now: datetime) -> dict[str, Any]:
    """Everything ``list`` knows about one snapshot, as JSON-ready data."""
    inputs = snapshot.inputs
    age = snapshot.age(now)
    return {
        "id": snapshot.id,
        "created": snapshot.created.isoformat() if snapshot.created else None,
        "age_seconds": int(age.total_seconds()) if age is not None else None,
        "size_bytes": snapshot.size,
        "topology": inputs.get("topology"),
        "kubernetes_version": inputs.get("kubernetes_version"),
        "node_image": inputs.get("node_image"),
        "image_ids": inputs.get("image_ids"),
        "config_digest": inputs.get("config_digest"),
        "config_file": inputs.get("config_file"),
        "cgroup_version": inputs.get("cgroup_version"),
        "format": inputs.get("format"),
        "captured_from": snapshot.cluster,
        "nodes": [
            {"name": n.name, "role": n.role, "ipv4": n.ipv4, "image": n.image}
            for n in snapshot.nodes
        ],
        "status": snapshot.problem or staleness(snapshot, images) or "ok",
    }


def json_lines(snapshots: Sequence[Snapshot], images: HostImages, now: datetime) -> list[str]:
    """``list --json``: one object per snapshot and line."""
    return [json.dumps(describe(s, images, now), sort_keys=True) for s in snapshots]


def table(snapshots: Sequence[Snapshot], images: HostImages, now: datetime) -> list[str]:
    """``list``: a table with a header, or a line saying there is none."""
    if not snapshots:
        return ["no snapshots (a session with --kind-snapshot, or `snapshot build`, makes one)"]
    rows = [list(COLUMNS)]
    for snapshot in snapshots:
        d = describe(snapshot, images, now)
        ids = d["image_ids"] or {}
        image_id = str(ids.get(d["node_image"], ""))
        image = f"{d['node_image']} ({image_id.removeprefix('sha256:')[:12]})"
        age = snapshot.age(now)
        rows.append(
            [
                snapshot.id,
                format_age(age) if age is not None else "?",
                f"{snapshot.size / 1e6:.0f} MB",
                str(d["topology"]),
                str(d["kubernetes_version"]),
                image,
                str(d["config_file"] or "default") + f" ({str(d['config_digest'])[:8]})",
                d["status"],
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
