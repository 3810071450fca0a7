"""pytest-xdist: one cluster per test run, shared by every worker.

A session fixture runs once per worker (pytest-xdist issues 271 and 783), which would mean one
cluster per worker. Instead:

- the controller picks the run id (hence the default cluster name) and a shared directory, and
  hands both to the workers through ``workerinput``;
- under a file lock, the first worker to need the cluster creates it and writes a marker; the
  others find the marker and attach (refresh a kubeconfig, check readiness);
- workers never delete. The controller decides the cluster's fate in ``pytest_sessionfinish``,
  after every worker has finished, with the failures it saw across all workers.
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
from typing import Any

import pytest
from filelock import FileLock

from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.cluster.reaper import remove_run
from pytest_kindcluster.errors import KindClusterError
from pytest_kindcluster.reporting import PROGRESS
from pytest_kindcluster.runtime import connect_engine
from pytest_kindcluster.settings import FAILED_KIND_TESTS, SETTINGS
from pytest_kindcluster.util.progress import PhaseTiming

RUN_ID_KEY = "kindcluster_run_id"
SHARE_DIR_KEY = "kindcluster_share_dir"
OWNER_PID_KEY = "kindcluster_owner_pid"
MARKER = "cluster.json"
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
    with FileLock(str(share / "create.lock"), timeout=budget):
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
        timings = [asdict(t) for t in cluster.timings]
        marker.write_text(
            json.dumps(
                {
                    "name": cluster.name,
                    "timings": timings,
                    "ready": cluster.ready_seconds,
                    "warm_start": cluster.warm_start,
                }
            )
        )
        return cluster


class XdistController:
    """Controller-side hooks; registered only when pytest-xdist is active."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.run_id = config.stash[RUN_ID]
        self.share = Path(tempfile.mkdtemp(prefix="kindcluster-xdist-"))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hand every worker the run id and the shared directory."""
        node.workerinput[RUN_ID_KEY] = self.run_id
        node.workerinput[SHARE_DIR_KEY] = str(self.share)
        node.workerinput[OWNER_PID_KEY] = os.getpid()

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
            for marker in [self.share / MARKER, *sorted(self.share.glob(f"*/{MARKER}"))]:
                self._finish(marker)
        finally:
            self._remove_leftovers()
            shutil.rmtree(self.share, ignore_errors=True)

    def _remove_leftovers(self) -> None:
        """Whatever of this run is still there and not kept: a cluster interrupted mid-create."""
        if not any(self.share.iterdir()):
            return  # no worker ever asked for a cluster: do not touch the engine
        failed = self.config.stash[FAILED_KIND_TESTS] > 0
        progress = self.config.stash[PROGRESS]
        try:
            for name in remove_run(connect_engine().resources(), self.run_id, failed=failed):
                progress.note(name, "removed (left over by an xdist worker)")
        except KindClusterError as exc:  # no engine now: the next run's reaper will do it
            progress.note(self.run_id, f"could not check for leftovers: {exc}")

    def _finish(self, marker: Path) -> None:
        if not marker.exists() or "error" in json.loads(marker.read_text()):
            return
        state = json.loads(marker.read_text())
        settings = self.config.stash[SETTINGS]
        progress = self.config.stash[PROGRESS]
        report = progress.report_for(state["name"])
        report.timings = [PhaseTiming(**t) for t in state["timings"]]
        if state.get("warm_start"):  # --kind-snapshot: which snapshot, or why cold
            report.notes.append(state["warm_start"])
        report.notes.append(f"ready in {state['ready']:.1f}s (created by an xdist worker)")
        failed = self.config.stash[FAILED_KIND_TESTS] > 0
        cluster = KindCluster(
            state["name"],
            kubeconfig=marker.parent / "controller" / "kubeconfig",
            retain=settings.retain,
            reuse=settings.reuse,
            logs_dir=settings.logs_dir,
            progress=progress,
        )
        cluster.adopt().close(failed=failed, export_logs=settings.export_logs_after(failed))
