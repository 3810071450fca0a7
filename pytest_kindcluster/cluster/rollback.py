"""What a failed or interrupted create leaves behind: evidence, and (unless retained) nothing else.

The clean-up steps here serve ``KindCluster.delete`` and ``close`` too. The first error wins:
whatever goes wrong while cleaning up (the engine refuses to remove a node, the log export
fails, the engine itself went away) is logged and becomes a note on the original error, never a
replacement for it. The user reads the ``kubeadm init`` failure first, with its evidence, and
then what could not be cleaned up and how to remove it by hand. Each clean-up step runs even
when an earlier one failed, so everything that can be removed is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from pytest_kindcluster.cluster import logs
from pytest_kindcluster.contract import RUN_ID_LABEL
from pytest_kindcluster.errors import KindClusterError
from pytest_kindcluster.provision.context import StepContext, describe_failure, typed_failure
from pytest_kindcluster.runtime.base import Node, NodeRuntime
from pytest_kindcluster.util.interrupts import shielded
from pytest_kindcluster.util.progress import format_timings

log = logging.getLogger(__name__)

# Seconds to wait before looking again for nodes of an interrupted create (see abandon).
INTERRUPTED_CREATE_SETTLE = 0.5


class Cleanup:
    """Clean-up steps that each run whatever failed before them; failures are kept and logged."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, Exception]] = []
        #: what the user should know besides the failures (what is left, what was kept)
        self.notes: list[str] = []

    def attempt(self, what: str, action: Callable[[], object]) -> bool:
        """Run one step; on failure log it, remember it, and return False."""
        try:
            action()
        except Exception as exc:  # the original error must survive any of them
            self.failures.append((what, exc))
            log.warning("clean-up could not %s: %s", what, one_line(exc))
            log.debug("clean-up failure in full", exc_info=True)
            return False
        return True

    def all_notes(self) -> list[str]:
        """Every failure as a line (followed by its own notes), then the other notes."""
        return [line for failure in self.failures for line in _lines(*failure)] + self.notes

    def raise_first(self) -> None:
        """Raise the first failure, if any, with everything else as notes on it."""
        if not self.failures:
            return
        first = self.failures[0][1]
        for note in self.all_notes()[len(_lines(*self.failures[0])) :]:
            first.add_note(note)
        raise first

    def remove_nodes(
        self, runtime: NodeRuntime, names: Sequence[str], relist: Callable[[], list[str]]
    ) -> bool:
        """Remove the named nodes; on failure note what is left and the command that removes it."""
        if not names or self.attempt("remove the nodes", lambda: runtime.remove_nodes(names)):
            return True
        left = list(names)

        def again() -> None:
            left[:] = relist()

        # Quietly: a second failure of the same engine says nothing new.
        Cleanup().attempt("list what is left", again)
        if left:
            self.notes.append(
                f"left behind: {', '.join(left)}; remove with `docker rm -f -v {' '.join(left)}`"
            )
        return False


def one_line(exc: BaseException) -> str:
    """An error's description on one line, for a note or a log line."""
    return describe_failure(exc).replace("\n", " ")


def _lines(what: str, exc: BaseException) -> list[str]:
    return [f"clean-up could not {what}: {one_line(exc)}", *failure_notes(exc)]


def failure_notes(exc: BaseException) -> list[str]:
    """The notes an error carries (``add_note``)."""
    return list(getattr(exc, "__notes__", []))


def remove_cluster(runtime: NodeRuntime, name: str, network: str, cleanup: Cleanup) -> None:
    """Every node of cluster ``name``, then the network if ours and unused; failures noted."""
    names: list[str] = []

    def listed() -> list[str]:
        return [n.name for n in runtime.list_nodes(name)]

    if cleanup.attempt("list the nodes", lambda: names.extend(listed())):
        cleanup.remove_nodes(runtime, names, listed)
    cleanup.attempt("remove the network", lambda: runtime.remove_network(network))


def nodes_of_run(ctx: StepContext) -> list[Node]:
    """Only what this run created: a same-named cluster made by someone else is not ours."""
    nodes = ctx.runtime.list_nodes(ctx.spec.name)
    return [n for n in nodes if n.details().labels.get(RUN_ID_LABEL) == ctx.run_id]


def roll_back(
    ctx: StepContext, exc: Exception, *, keep: bool, logs_dir: Callable[[], Path]
) -> tuple[KindClusterError, bool]:
    """Export this run's nodes' logs, remove them unless ``keep``; return the error to raise.

    The flag says whether a cluster was kept, so the caller keeps its kubeconfig; otherwise the
    kubeconfig should go too, even when some node could not be removed.
    """
    name = ctx.spec.name
    cleanup = Cleanup()
    exported: list[Path] = []
    mine: list[Node] = []
    with shielded():
        cleanup.attempt("list the nodes", lambda: mine.extend(nodes_of_run(ctx)))
        if mine:
            ctx.nodes = ctx.nodes or mine
        # A node that never started (its port was taken, say) has no logs to tell.
        started: list[Node] = []
        cleanup.attempt("inspect the nodes", lambda: started.extend(_started(mine)))
        if started:
            cleanup.attempt(
                "export the logs",
                lambda: exported.append(logs.export_logs(ctx.runtime, mine, logs_dir())),
            )
        kept = keep and bool(mine)
        if kept:
            cleanup.notes.append(
                f"cluster {name!r} kept for debugging; delete it with "
                f"`kind delete cluster --name {name}`"
            )
        elif not keep:
            names = [n.name for n in mine]
            if cleanup.remove_nodes(ctx.runtime, names, lambda: _names(nodes_of_run(ctx))) and mine:
                cleanup.notes.append(f"cluster {name!r} rolled back (retain=never)")
            cleanup.attempt(
                "remove the network", lambda: ctx.runtime.remove_network(ctx.spec.network)
            )
    error = typed_failure(exc, ctx.failed_step or "create", exported[0] if exported else None)
    error.add_note(f"phases: {format_timings(ctx.timings)}")
    for note in cleanup.all_notes():
        error.add_note(note)
    return error, kept


def abandon(ctx: StepContext, interrupt: BaseException) -> None:
    """Ctrl-C or SIGTERM mid-create: remove this run's nodes now, without a log export.

    No teardown will ever run for a cluster that was never handed out. What cannot be removed
    is named in a note on the interrupt (pytest prints it) and in the log.
    """
    cleanup = Cleanup()
    with shielded():
        # Twice: a create request the interrupt cut short may still be completing in the engine,
        # and its container would appear only after the first listing.
        for pause in (0.0, INTERRUPTED_CREATE_SETTLE):
            time.sleep(pause)
            mine: list[Node] = []
            if not cleanup.attempt("list the nodes", partial(_collect, mine, ctx)):
                break
            if not cleanup.remove_nodes(
                ctx.runtime, _names(mine), lambda: _names(nodes_of_run(ctx))
            ):
                break
    for note in cleanup.all_notes():
        interrupt.add_note(note)


def _started(nodes: list[Node]) -> list[Node]:
    return [n for n in nodes if n.details().state != "created"]


def _collect(into: list[Node], ctx: StepContext) -> None:
    into.extend(nodes_of_run(ctx))


def _names(nodes: list[Node]) -> list[str]:
    return [n.name for n in nodes]
