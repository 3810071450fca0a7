"""Capture: a ready cluster, created cold for this purpose, becomes a snapshot.

The capture cluster is named ``kc-snap-<id>``: its names are the ones every clone keeps inside
(hostnames, Kubernetes node names, the control-plane endpoint). Its nodes are quiesced, stopped
cleanly, and each is made into one image (``runtime/docker/snapshots.py``), with the kubelet
held back until a clone's addresses are rewritten (``provision/restore.py``).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_kindcluster.cluster.rollback import roll_back
from pytest_kindcluster.cluster.snapshot import (
    CAPTURE_PREFIX,
    Snapshot,
    find,
    image_labels,
    image_ref,
)
from pytest_kindcluster.contract import DEFAULT_NETWORK, RETAIN_LABEL
from pytest_kindcluster.errors import ProvisionError
from pytest_kindcluster.provision import StepContext, build_steps, run_steps
from pytest_kindcluster.provision.restore import (
    KUBELET_GATE,
    KUBELET_GATE_FILE,
    PENDING_FILE,
    RestoreNode,
)
from pytest_kindcluster.runtime.base import Node, SnapshotStore
from pytest_kindcluster.util.concurrency import run_all

# systemd stops a quiesced node in about a second; a node that takes longer is killed, which
# containerd and etcd survive (both are crash-safe).
STOP_TIMEOUT = 30.0
# Before the stop: no kubelet to restart what is stopped, and no pod left running. A pod stopped
# by systemd's shutdown instead can hold it for 90 s (a shell loop as PID 1 ignores SIGTERM), and
# the kubelet recreates every sandbox on the clone anyway.
QUIESCE = (("systemctl", "stop", "kubelet"), ("crictl", "rmp", "--force", "--all"))
# containerd's unpacked image layers (about 600 MB on a control plane) are read-only once
# committed, so they can stay in the snapshot image instead of being copied into every clone's
# /var volume: overlayfs takes a lower layer on overlayfs, only its upper layer must not be one
# (containerd issue 2402). Links in the volume point at them. Only done when the quiesced node
# has no active snapshot left, which would be a writable upper layer.
SNAPSHOTS_DIR = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
SNAPSHOTS_KEPT_IN = "/kind/containerd-snapshots"
ACTIVE_SNAPSHOTS = (
    'for ns in $(ctr namespaces ls -q); do ctr -n "$ns" snapshots ls; done'
    ' | awk \'$1 != "KEY" && $NF != "Committed"\''
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

    read_only: dict[str, bool] = {}

    def quiesce(node: Node) -> None:
        for argv in QUIESCE:
            node.exec(*argv)
        read_only[node.name] = not node.exec("sh", "-c", ACTIVE_SNAPSHOTS).stdout.strip()
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
            moves={SNAPSHOTS_DIR: SNAPSHOTS_KEPT_IN} if read_only[node.name] else {},
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
