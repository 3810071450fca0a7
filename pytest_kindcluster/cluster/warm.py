"""Warm start: boot a session's cluster from a snapshot, making the snapshot first if needed.

1. The inputs (node image IDs, normalized config, cgroup version, format) give the snapshot id.
2. Under a file lock per id (so parallel sessions and xdist workers make it once): if no usable
   snapshot exists, a capture cluster ``kc-snap-<id>`` is created cold, waits for strict
   readiness, and is captured (:func:`capture`), then deleted.
3. The session's cluster boots from the snapshot (``provision/restore.py``). If that fails, the
   half-booted cluster is removed, so is the snapshot, and the cluster is created cold.

Every outcome is a line on the terminal: which snapshot, how old, or why the cluster was created
cold. A snapshot is never used silently.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from filelock import FileLock

from pytest_kindcluster.cluster import logs
from pytest_kindcluster.cluster.ownership import Owner, OwnerState, cluster_labels
from pytest_kindcluster.cluster.rollback import nodes_of_run, roll_back
from pytest_kindcluster.cluster.snapshot import (
    CAPTURE_PREFIX,
    Snapshot,
    delete,
    find,
    format_age,
    image_labels,
    image_ref,
    list_snapshots,
    lock_path,
    node_images,
    refuse_high_availability,
    snapshot_inputs,
)
from pytest_kindcluster.contract import DEFAULT_NETWORK, RETAIN_LABEL, SNAPSHOT_NETWORK_LABEL
from pytest_kindcluster.errors import ConfigError, KindClusterError, ProvisionError
from pytest_kindcluster.provision import ClusterSpec, StepContext, build_steps, run_steps
from pytest_kindcluster.provision.imagecheck import ensure_images
from pytest_kindcluster.provision.restore import (
    KUBELET_GATE,
    KUBELET_GATE_FILE,
    PENDING_FILE,
    RestoreNode,
    network_name,
    restore_steps,
)
from pytest_kindcluster.runtime.base import Engine, Node, SnapshotEngine, SnapshotStore
from pytest_kindcluster.util.concurrency import run_all
from pytest_kindcluster.util.progress import Progress

log = logging.getLogger(__name__)

# systemd stops a quiesced node in about a second; a node that takes longer is killed, which
# containerd and etcd survive (both are crash-safe).
STOP_TIMEOUT = 30.0
# A second session waits this long (beyond its readiness budget) for another one's capture.
CAPTURE_BUDGET = 900.0
# Before the stop: no kubelet to restart what is stopped, and no pod left running. A pod stopped
# by systemd's shutdown instead can hold it for 90 s (a shell loop as PID 1 ignores SIGTERM), and
# the kubelet recreates every sandbox on the clone anyway.
QUIESCE = (("systemctl", "stop", "kubelet"), ("crictl", "rmp", "--force", "--all"))


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


def create_from_snapshot(ctx: StepContext, *, logs_dir: Callable[[], Path]) -> None:
    """Boot ``ctx.spec``'s cluster from its snapshot (made first if missing), else cold."""
    name, spec = ctx.spec.name, ctx.spec
    refuse_high_availability(spec.cluster_config)
    store = snapshot_store_of(ctx.runtime)
    ctx.info = ctx.runtime.info()
    inputs = current_inputs(ctx)
    sid = inputs["id"]
    sweep_networks(store, ctx)
    with FileLock(str(lock_path(sid)), timeout=spec.timeout + CAPTURE_BUDGET):
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
        in_use = delete(store, snapshot)
        fate = "kept, a running cluster uses it" if in_use else "removed it"
        ctx.progress.note(
            name, f"created cold: snapshot {sid} failed to boot: {reason} ({fate}){where}"
        )
        ctx.spec = spec
        run_steps(build_steps(spec), ctx)
        return
    except BaseException:
        _discard_boot(ctx, store, None)
        raise
    age = snapshot.age()
    ctx.progress.note(
        name, f"booted from snapshot {sid} (created {format_age(age) if age else '?'} ago)"
    )


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
    """ "no snapshot for these inputs", naming a snapshot of the same config made from other
    node images (the node image was rebuilt: that snapshot is stale)."""
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


def make_snapshot(
    ctx: StepContext,
    store: SnapshotStore,
    inputs: Mapping[str, Any],
    *,
    logs_dir: Callable[[], Path],
    why: str = "no snapshot for these inputs",
) -> Snapshot:
    """Create the capture cluster cold, wait until it is ready, capture it, delete it."""
    sid = inputs["id"]
    name = f"{CAPTURE_PREFIX}{sid[:10]}"
    ctx.progress.note(ctx.spec.name, f"created cold: {why}; capturing snapshot {sid} from {name}")
    kubeconfig_dir = Path(tempfile.mkdtemp(prefix=f"kindcluster-{name}-"))
    labels = {**ctx.labels, RETAIN_LABEL: "never"}  # a crashed capture is reaped, never kept
    cold = StepContext(
        spec=replace(ctx.spec, name=name, network=DEFAULT_NETWORK),
        runtime=ctx.runtime,
        images=ctx.images,
        progress=ctx.progress,
        kubeconfig_path=kubeconfig_dir / "kubeconfig",
        run_id=ctx.run_id,
        labels=labels,
        info=ctx.info,
    )
    started = time.monotonic()
    try:
        try:
            run_steps(build_steps(cold.spec), cold)
        except Exception as exc:
            error, _ = roll_back(cold, exc, keep=False, logs_dir=logs_dir)
            raise error from exc
        step = Capture(store, {**inputs, "kubernetes_version": cold.kubernetes_version})
        run_steps([step], cold)
        snapshot = step.snapshot
    finally:
        if cold.api_client is not None:
            cold.api_client.close()
        ctx.runtime.remove_nodes([n.name for n in ctx.runtime.list_nodes(name)])
        if cold.network_created:
            ctx.runtime.remove_network(DEFAULT_NETWORK)
        shutil.rmtree(kubeconfig_dir, ignore_errors=True)
    assert snapshot is not None  # Capture.run sets it or raises
    size = f"{snapshot.size / 1e6:.0f} MB"
    ctx.progress.note(
        ctx.spec.name, f"snapshot {sid} captured in {time.monotonic() - started:.1f}s ({size})"
    )
    return snapshot


class Capture:
    """Stop a ready cluster's nodes cleanly and make one image of each."""

    name = "capture"

    def __init__(self, store: SnapshotStore, inputs: Mapping[str, Any]) -> None:
        self.store = store
        self.inputs = inputs
        self.snapshot: Snapshot | None = None

    def run(self, ctx: StepContext) -> None:
        """Capture ``ctx``'s cluster into the snapshot of ``inputs``."""
        self.snapshot = capture(ctx, self.store, self.inputs)


def capture(cold: StepContext, store: SnapshotStore, inputs: Mapping[str, Any]) -> Snapshot:
    """Stop the ready cluster's nodes cleanly and make one image of each."""
    sid = inputs["id"]
    nodes = cold.kube_nodes
    prefix = f"{cold.spec.name}-"
    captured = {
        n.name: RestoreNode(
            image_ref(sid, n.name.removeprefix(prefix)),
            n.name,
            n.role,
            n.details().ipv4,
            n.name.removeprefix(prefix),
        )
        for n in nodes
    }

    def quiesce(node: Node) -> None:
        for argv in QUIESCE:
            node.exec(*argv)
        store.stop_node(node.name, timeout=STOP_TIMEOUT)

    def commit(node: Node) -> None:
        restore = captured[node.name]
        store.capture_node(
            node.name,
            restore.image,
            base_image=cold.spec.image,
            labels=image_labels(inputs, restore, len(nodes), cold.spec.name),
            extra_files={
                PENDING_FILE: f"{restore.ipv4}\n".encode(),
                KUBELET_GATE_FILE: KUBELET_GATE.encode(),
            },
        )

    try:
        run_all(quiesce, nodes, what="stop the nodes")
        run_all(commit, nodes, what="capture the nodes")
    except BaseException:
        for ref in (r.image for r in captured.values()):
            store.remove_image(ref)
        raise
    snapshot = find(store, sid)
    if snapshot is None or snapshot.problem:
        problem = snapshot.problem if snapshot else "no image of it is listed"
        raise ProvisionError(
            "capture", f"snapshot {sid} is unusable right after capture: {problem}"
        )
    return snapshot


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
    sweep_networks(store, ctx)
    with FileLock(str(lock_path(inputs["id"])), timeout=spec.timeout + CAPTURE_BUDGET):
        existing = usable_snapshot(ctx, store, inputs)
        if existing is not None:
            return existing, False
        why = why_cold(store, inputs)
        return make_snapshot(ctx, store, inputs, logs_dir=logs_dir, why=why), True


def sweep_networks(store: SnapshotStore, ctx: StepContext) -> None:
    """Remove the networks of restored clusters whose owner died (nothing else removes them)."""
    for network in store.networks(SNAPSHOT_NETWORK_LABEL):
        owner = Owner.from_labels(network.labels)
        if network.containers or owner is None or owner.state() is not OwnerState.GONE:
            continue
        if ctx.runtime.remove_network(network.name):
            ctx.progress.note(ctx.spec.name, f"removed network {network.name} of a dead run")


def _one_line(exc: BaseException, limit: int = 400) -> str:
    """The error on one line, for the terminal; the exported logs have the rest."""
    if isinstance(exc, BaseExceptionGroup):
        text = "; ".join(_one_line(e, limit) for e in exc.exceptions)
    else:
        text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
