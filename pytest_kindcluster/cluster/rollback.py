"""What a failed create leaves behind: evidence, and (unless retained) nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_kindcluster.cluster import logs
from pytest_kindcluster.contract import RUN_ID_LABEL
from pytest_kindcluster.errors import KindClusterError
from pytest_kindcluster.provision.context import StepContext, typed_failure
from pytest_kindcluster.runtime.base import Node
from pytest_kindcluster.util.progress import format_timings


def nodes_of_run(ctx: StepContext) -> list[Node]:
    """Only what this run created: a same-named cluster made by someone else is not ours."""
    nodes = ctx.runtime.list_nodes(ctx.spec.name)
    return [n for n in nodes if n.details().labels.get(RUN_ID_LABEL) == ctx.run_id]


def roll_back(
    ctx: StepContext, exc: Exception, *, keep: bool, logs_dir: Callable[[], Path]
) -> tuple[KindClusterError, bool]:
    """Export this run's nodes' logs, remove them unless ``keep``; return the error to raise.

    Clean-up problems become notes on the original error, never a replacement for it (when the
    engine itself went away, the clean-up fails for the same reason). The flag says whether the
    cluster was rolled back, so the caller can drop its kubeconfig too.
    """
    name = ctx.spec.name
    notes: list[str] = []
    dest: Path | None = None
    rolled_back = False
    try:
        mine = nodes_of_run(ctx)
        if mine:
            ctx.nodes = ctx.nodes or mine
            dest = logs.export_logs(ctx.runtime, mine, logs_dir())
        if keep and mine:
            notes.append(
                f"cluster {name!r} kept for debugging; delete it with "
                f"`kind delete cluster --name {name}`"
            )
        elif not keep:
            ctx.runtime.remove_nodes([n.name for n in mine])
            ctx.runtime.remove_network(ctx.spec.network)
            rolled_back = True
            if mine:
                notes.append(f"cluster {name!r} rolled back (retain=never)")
    except KindClusterError as cleanup:
        notes.append(f"clean-up after the failure also failed: {cleanup}")
    error = typed_failure(exc, ctx.failed_step or "create", dest)
    error.add_note(f"phases: {format_timings(ctx.timings)}")
    for note in notes:
        error.add_note(note)
    return error, rolled_back
