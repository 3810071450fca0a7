"""pytest-xdist: one cluster per test run, shared by every worker.

A session fixture runs once per worker (pytest-xdist issues 271 and 783), which would mean one
cluster per worker. Instead:

- the controller picks the run id (hence the default cluster name) and a shared directory, and
  hands both to the workers through ``workerinput``;
- under a file lock, the first worker to need the cluster creates it and writes a marker; the
  others find the marker and attach (refresh a kubeconfig, check readiness);
- workers never delete. The controller decides the cluster's fate in ``pytest_sessionfinish``,
  after every worker has finished, with the failures it saw across all workers. The creating
  worker's marker records what the controller needs and cannot request as a fixture: the
  retention the (possibly overridden) ``kind_settings`` asked for, and which runtime class made
  the cluster; the controller resolves ``kind_runtime`` through ``overrides.py`` and leaves the
  cluster alone if that is not the same kind of engine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from filelock import FileLock
from filelock import Timeout as LockTimedOut

from pytest_kindcluster.cluster.reaper import delete_command, remove_run
from pytest_kindcluster.errors import KindClusterError, LockTimeout
from pytest_kindcluster.overrides import runtime_kind, session_runtime, session_settings
from pytest_kindcluster.reporting import PROGRESS
from pytest_kindcluster.runtime.base import Engine
from pytest_kindcluster.settings import FAILED_KIND_TESTS, SETTINGS
from pytest_kindcluster.signals import TERMINATION
from pytest_kindcluster.util.interrupts import shielded
from pytest_kindcluster.util.progress import PhaseTiming

if TYPE_CHECKING:  # imported when needed: it brings the Kubernetes client along
    from pytest_kindcluster.cluster.lifecycle import KindCluster

RUN_ID_KEY = "kindcluster_run_id"
SHARE_DIR_KEY = "kindcluster_share_dir"
OWNER_PID_KEY = "kindcluster_owner_pid"
MARKER = "cluster.json"
# The name the controller-side hooks are registered under.
XDIST_CONTROLLER = "kindcluster-xdist"
# Written by a worker whose collection kept a kind test: the controller then owns clusters.
KIND_TESTS_FLAG = "kind-tests-collected"
# The run id of this pytest process, picked once in pytest_configure (received, on a worker).
RUN_ID = pytest.StashKey[str]()


def worker_input(config: pytest.Config) -> dict[str, Any] | None:
    """What the controller sent, on an xdist worker; None on the controller or without xdist."""
    return getattr(config, "workerinput", None)


def run_id_for(config: pytest.Config) -> str:
    """The controller's run id on workers, so every worker names the cluster the same."""
    received = worker_input(config)
    if received and RUN_ID_KEY in received:
        return str(received[RUN_ID_KEY])
    return secrets.token_hex(4)


def owner_pid(config: pytest.Config) -> int:
    """The process whose death orphans the run's clusters: the controller under xdist.

    A worker may exit (or be replaced after a crash) while the others still use the cluster
    it created; only the controller's exit ends the run.
    """
    received = worker_input(config)
    return int(received[OWNER_PID_KEY]) if received and OWNER_PID_KEY in received else os.getpid()


def share_dir(config: pytest.Config) -> Path | None:
    """The directory workers coordinate through, when running under xdist."""
    received = worker_input(config)
    return Path(received[SHARE_DIR_KEY]) if received and SHARE_DIR_KEY in received else None


def shared_cluster(share: Path, make: Callable[[bool], KindCluster], budget: float) -> KindCluster:
    """Create the run's cluster, or attach to the one another worker created.

    ``make(reuse)`` builds the KindCluster. A failed creation is recorded, so the other workers
    fail at once with the same message instead of each trying (and failing) again.
    """
    marker = share / MARKER
    try:
        with FileLock(str(share / "create.lock"), timeout=budget):
            return _create_or_attach(marker, make)
    except LockTimedOut as exc:
        raise LockTimeout(
            f"waited {budget:g}s for another xdist worker to create the cluster (lock "
            f"{exc.lock_file}); that worker is stuck or slow, and its output says which. On a "
            "slow host, raise --kind-timeout"
        ) from exc


def _create_or_attach(marker: Path, make: Callable[[bool], KindCluster]) -> KindCluster:
    """Under the lock: attach if another worker recorded a cluster, else create and record it."""
    if marker.exists():
        state = json.loads(marker.read_text())
        if "error" in state:
            raise KindClusterError(
                f"another worker failed to create the cluster:\n{state['error']}"
            )
        return make(True).create()
    try:
        cluster = make(False).create()
    except KindClusterError as exc:
        evidence = "\n".join([str(exc), *getattr(exc, "__notes__", [])])
        marker.write_text(json.dumps({"error": evidence}))
        raise
    marker.write_text(json.dumps(marker_state(cluster)))
    return cluster


def note_kind_tests(config: pytest.Config) -> None:
    """On a worker whose collection kept kind tests: tell the controller, before any test runs."""
    share = share_dir(config)
    if share is not None:
        (share / KIND_TESTS_FLAG).touch()


def marker_state(cluster: KindCluster) -> dict[str, Any]:
    """What the controller needs to decide the cluster's fate once the workers are gone."""
    return {
        "name": cluster.name,
        "timings": [asdict(t) for t in cluster.timings],
        "ready": cluster.ready_seconds,
        "retain": cluster.retain,
        "reuse": cluster.reuse,
        "logs_dir": str(cluster.logs_dir) if cluster.logs_dir else None,
        "runtime": runtime_kind(cluster.runtime),
        "notes": cluster.reap_notes,
        "warm_start": cluster.warm_start,
    }


class XdistController:
    """Controller-side hooks; registered only when pytest-xdist is active."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.run_id = config.stash[RUN_ID]
        self.share = Path(tempfile.mkdtemp(prefix="kindcluster-xdist-"))
        self.owning = False

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hand every worker the run id and the shared directory."""
        node.workerinput[RUN_ID_KEY] = self.run_id
        node.workerinput[SHARE_DIR_KEY] = str(self.share)
        node.workerinput[OWNER_PID_KEY] = os.getpid()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """A worker kept kind tests: from now on the run owns clusters (see signals.py)."""
        if not self.owning and (self.share / KIND_TESTS_FLAG).exists():
            self.owning = True
            self.config.stash[TERMINATION].acquire(self.config.stash[SETTINGS].name)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count failed kind tests from every worker (the marker travels in the keywords)."""
        if report.failed and "kind" in report.keywords:
            self.config.stash[FAILED_KIND_TESTS] += 1

    # trylast: after xdist's own sessionfinish has stopped the workers, so that on Ctrl-C or
    # SIGTERM no worker is still creating or using a cluster when it is deleted.
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        """After all workers: delete the shared clusters, or keep them as the policy says.

        The default cluster's marker is at the top of the shared directory; each marked
        cluster (``@pytest.mark.kind_cluster``) has its own in a subdirectory.
        """
        try:
            with shielded():
                self.load_reports()
                for marker in self._markers():
                    self._finish(marker)
        finally:
            with shielded():
                self._remove_leftovers()
            shutil.rmtree(self.share, ignore_errors=True)
            if self.owning:
                self.config.stash[TERMINATION].release(self.config.stash[SETTINGS].name)

    def _runtime(self) -> Engine:
        """``kind_runtime`` as a conftest overrides it; the workers' is gone with them."""
        return session_runtime(self.config)

    def _remove_leftovers(self) -> None:
        """Whatever of this run is still there and not kept: a cluster interrupted mid-create."""
        if not any(p.name != KIND_TESTS_FLAG for p in self.share.iterdir()):
            return  # no worker ever asked for a cluster: do not touch the engine
        failed = self.config.stash[FAILED_KIND_TESTS] > 0
        progress = self.config.stash[PROGRESS]
        try:
            removed, problems = remove_run(self._runtime().resources(), self.run_id, failed=failed)
        except KindClusterError as exc:  # no engine now: the next run's reaper will do it
            progress.note(self.run_id, f"could not check for leftovers: {exc}")
            return
        for name in removed:
            progress.note(name, "removed (left over by an xdist worker)")
        for problem in problems:
            progress.note(self.run_id, f"warning: could not remove {problem}")

    def _markers(self) -> list[Path]:
        """The created clusters: the default one's marker, then each marked cluster's."""
        found = [self.share / MARKER, *sorted(self.share.glob(f"*/{MARKER}"))]
        return [m for m in found if m.exists() and "error" not in json.loads(m.read_text())]

    def load_reports(self) -> None:
        """Each cluster's phases and time to ready, as the worker that made it recorded them.

        Called again after the JUnit report has taken them; only the first call counts.
        """
        progress = self.config.stash[PROGRESS]
        for marker in self._markers():
            state = json.loads(marker.read_text())
            report = progress.report_for(state["name"])
            if report.ready_seconds is not None:
                continue
            report.timings = [PhaseTiming(**t) for t in state["timings"]]
            report.ready_seconds = state["ready"]
            report.notes += state["notes"]  # what the creating worker said about others' leftovers
            if state.get("warm_start"):  # --kind-snapshot: which snapshot, or why cold
                report.notes.append(state["warm_start"])
            report.notes.append(f"ready in {state['ready']:.1f}s (created by an xdist worker)")

    def _finish(self, marker: Path) -> None:
        from pytest_kindcluster.cluster.lifecycle import KindCluster  # noqa: PLC0415 - see top

        state = json.loads(marker.read_text())
        name = state["name"]
        progress = self.config.stash[PROGRESS]
        failed = self.config.stash[FAILED_KIND_TESTS] > 0
        try:
            runtime = self._runtime()
            export_logs = session_settings(self.config).export_logs_after(failed)
        except KindClusterError as exc:
            progress.note(name, f"left as it is: {exc}; remove it with `{delete_command(name)}`")
            return
        if runtime_kind(runtime) != state["runtime"]:
            progress.note(
                name,
                f"left as it is: made through {state['runtime']}, but the xdist controller's "
                f"kind_runtime is {runtime_kind(runtime)} (override kind_runtime in a conftest.py "
                f"pytest loads at start-up, e.g. the rootdir's); remove it with "
                f"`{delete_command(name)}`",
            )
            return
        cluster = KindCluster(
            name,
            kubeconfig=marker.parent / "controller" / "kubeconfig",
            # As the worker's kind_settings asked; the controller cannot request that fixture.
            retain=state["retain"],
            reuse=state["reuse"],
            logs_dir=Path(state["logs_dir"]) if state["logs_dir"] else None,
            runtime=runtime,
            images=runtime,
            progress=progress,
        )
        cluster.adopt().close(failed=failed, export_logs=export_logs)
