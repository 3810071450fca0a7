"""Warm start: boot a session's cluster from a snapshot, making the snapshot first if needed.

1. The inputs (node image IDs, normalized config, cgroup version, format) give the snapshot id.
2. Under the snapshot lock (so parallel sessions and xdist workers make it once): if no usable
   snapshot exists, a capture cluster ``kc-snap-<id>`` is created cold, waits for strict
   readiness, and is captured (``capture.py``), then deleted.
3. The session's cluster boots from the snapshot (``provision/restore.py``). If that fails, the
   half-booted cluster is removed, so is the snapshot, and the cluster is created cold.

Every outcome is a line on the terminal: which snapshot, how old, or why the cluster was created
cold. A snapshot is never used silently.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_kindcluster.cluster import logs
from pytest_kindcluster.cluster.capture import make_snapshot
from pytest_kindcluster.cluster.ownership import Owner, OwnerState, cluster_labels
from pytest_kindcluster.cluster.rollback import nodes_of_run
from pytest_kindcluster.cluster.snapshot import (
    Snapshot,
    delete,
    find,
    format_age,
    list_snapshots,
    node_images,
    refuse_high_availability,
    snapshot_inputs,
    snapshot_lock,
)
from pytest_kindcluster.contract import SNAPSHOT_NETWORK_LABEL
from pytest_kindcluster.errors import ConfigError, KindClusterError
from pytest_kindcluster.provision import ClusterSpec, StepContext, build_steps, run_steps
from pytest_kindcluster.provision.imagecheck import ensure_images
from pytest_kindcluster.provision.restore import (
    network_name,
    restore_steps,
)
from pytest_kindcluster.runtime.base import Engine, NodeRuntime, SnapshotEngine, SnapshotStore
from pytest_kindcluster.util.progress import Progress

log = logging.getLogger(__name__)

# A second session waits this long (beyond its readiness budget) for another one's capture.
CAPTURE_BUDGET = 900.0


def snapshot_store_of(runtime: object) -> SnapshotStore:
    """The engine's snapshot operations; an engine without them cannot take snapshots."""
    if not isinstance(runtime, SnapshotEngine):
        raise ConfigError(
            f"the container engine ({type(runtime).__name__}) cannot hold snapshots; "
            "run without --kind-snapshot"
        )
    return runtime.snapshots()


def current_inputs(ctx: StepContext) -> dict[str, Any]:
    """The inputs of ``ctx.spec`` now, pulling (or failing on) a node image the engine lacks."""
    refs = sorted(node_images(ctx.spec))
    ensure_images(ctx, refs)
    ids = {ref: ctx.images.image_id(ref) or "" for ref in refs}
    info = ctx.info or ctx.runtime.info()
    return snapshot_inputs(ctx.spec, ids, info.cgroup_version)


def create_from_snapshot(ctx: StepContext, *, logs_dir: Callable[[], Path]) -> str:
    """Boot ``ctx.spec``'s cluster from its snapshot (made first if missing), else cold.

    Returns the terminal line that says which: ``booted from snapshot ...`` or ``created cold:
    ...``.
    """
    name, spec = ctx.spec.name, ctx.spec
    refuse_high_availability(spec.cluster_config)
    store = snapshot_store_of(ctx.runtime)
    ctx.info = ctx.runtime.info()
    inputs = current_inputs(ctx)
    sid = inputs["id"]
    _sweep(store, ctx)
    with snapshot_lock(timeout=spec.timeout + CAPTURE_BUDGET):
        snapshot = usable_snapshot(ctx, store, inputs)
        if snapshot is None:
            snapshot = make_snapshot(
                ctx, store, inputs, logs_dir=logs_dir, why=why_cold(store, inputs)
            )
    ctx.spec = replace(spec, network=network_name(name))
    try:
        run_steps(restore_steps(snapshot.nodes, store), ctx)
    except Exception as exc:  # noqa: BLE001 - whatever stops the boot, a cold create follows
        reason = _one_line(exc)
        where = _discard_boot(ctx, store, logs_dir)
        # Removed, so that the next session makes a new one instead of failing the same way.
        try:
            with snapshot_lock(timeout=CAPTURE_BUDGET):
                in_use = delete(store, snapshot)
            fate = "kept, a running cluster uses it" if in_use else "removed it"
        except KindClusterError as cleanup:
            fate = f"could not remove it: {cleanup}"
        outcome = f"created cold: snapshot {sid} failed to boot: {reason} ({fate}){where}"
        ctx.progress.note(name, outcome)
        ctx.spec = spec
        run_steps(build_steps(spec), ctx)
        return outcome
    except BaseException:
        _discard_boot(ctx, store, None)
        raise
    age = snapshot.age()
    outcome = f"booted from snapshot {sid} (created {format_age(age) if age else '?'} ago)"
    ctx.progress.note(name, outcome)
    return outcome


def usable_snapshot(
    ctx: StepContext, store: SnapshotStore, inputs: Mapping[str, Any]
) -> Snapshot | None:
    """The snapshot for ``inputs`` if it is whole and matches; a broken one is removed."""
    snapshot = find(store, inputs["id"])
    if snapshot is None:
        return None
    problems = [snapshot.problem] if snapshot.problem else snapshot.mismatch(inputs)
    if not problems:
        return snapshot
    ctx.progress.note(
        ctx.spec.name,
        f"snapshot {snapshot.id} does not match its inputs ({'; '.join(problems)}); removing it",
    )
    delete(store, snapshot)
    return None


def why_cold(store: SnapshotStore, inputs: Mapping[str, Any]) -> str:
    """Why there is no snapshot: none for these inputs, and maybe a stale one of the same config
    (made from an earlier build of the node image) that ``snapshot prune`` would remove."""
    stale = [
        s
        for s in list_snapshots(store)
        if s.id != inputs["id"]
        and s.inputs.get("config_digest") == inputs["config_digest"]
        and s.inputs.get("node_image") == inputs["node_image"]
    ]
    if not stale:
        return "no snapshot for these inputs"
    details = "; ".join(", ".join(s.mismatch(inputs)) or "other inputs" for s in stale)
    ids = ", ".join(s.id for s in stale)
    return (
        f"no snapshot for these inputs (snapshot {ids} is stale: {details}; "
        "`python -m pytest_kindcluster snapshot prune` removes it)"
    )


def _discard_boot(
    ctx: StepContext, store: SnapshotStore, logs_dir: Callable[[], Path] | None
) -> str:
    """Remove what a failed boot made (exporting its logs first); returns where they went."""
    where = ""
    try:
        mine = nodes_of_run(ctx)
        if logs_dir is not None and mine:
            where = f" (logs: {logs.export_logs(ctx.runtime, mine, logs_dir())})"
        ctx.runtime.remove_nodes([n.name for n in mine])
        ctx.runtime.remove_network(ctx.spec.network)
    except KindClusterError as exc:
        log.warning("cleaning up the failed boot of %s: %s", ctx.spec.name, exc)
    if ctx.api_client is not None:
        ctx.api_client.close()
        ctx.api_client = None
    ctx.nodes = []
    ctx.failed_step = None
    ctx.network_created = False
    return where


def build_snapshot(
    spec: ClusterSpec, engine: Engine, *, progress: Progress, logs_dir: Callable[[], Path]
) -> tuple[Snapshot, bool]:
    """Make the snapshot of ``spec`` ahead of time (CLI); True if made now, False if it was
    there already."""
    refuse_high_availability(spec.cluster_config)
    run_id = secrets.token_hex(4)
    ctx = StepContext(
        spec=spec,
        runtime=engine,
        images=engine,
        progress=progress,
        kubeconfig_path=Path(tempfile.gettempdir()) / "unused",
        run_id=run_id,
        labels=cluster_labels(Owner.of(), run_id, "never"),
    )
    store = snapshot_store_of(ctx.runtime)
    ctx.info = engine.info()
    inputs = current_inputs(ctx)
    _sweep(store, ctx)
    with snapshot_lock(timeout=spec.timeout + CAPTURE_BUDGET):
        existing = usable_snapshot(ctx, store, inputs)
        if existing is not None:
            return existing, False
        why = why_cold(store, inputs)
        return make_snapshot(ctx, store, inputs, logs_dir=logs_dir, why=why), True


def sweep_networks(store: SnapshotStore, runtime: NodeRuntime) -> list[str]:
    """Remove the empty networks of restored clusters whose owner died; returns their names.

    Deleting the cluster removes its network, but a killed run, or ``kind delete cluster``
    (which knows nothing of it), leaves it behind, and Docker has room for about 30 networks.
    """
    removed = []
    for network in store.networks(SNAPSHOT_NETWORK_LABEL):
        owner = Owner.from_labels(network.labels)
        if network.containers or owner is None or owner.state() is not OwnerState.GONE:
            continue
        if runtime.remove_network(network.name):
            removed.append(network.name)
    return removed


def _sweep(store: SnapshotStore, ctx: StepContext) -> None:
    for network in sweep_networks(store, ctx.runtime):
        ctx.progress.note(ctx.spec.name, f"removed network {network} of a dead run")


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """The error on one line, for the terminal; the exported logs have the rest."""
    if isinstance(exc, BaseExceptionGroup):
        text = "; ".join(_one_line(e, limit) for e in exc.exceptions)
    else:
        text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
