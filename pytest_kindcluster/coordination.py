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
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from pytest_kindcluster.cluster import KindCluster
from pytest_kindcluster.errors import KindClusterError
from pytest_kindcluster.progress import PhaseTiming
from pytest_kindcluster.reporting import PROGRESS
from pytest_kindcluster.settings import FAILED_KIND_TESTS, SETTINGS

RUN_ID_KEY = "kindcluster_run_id"
SHARE_DIR_KEY = "kindcluster_share_dir"
MARKER = "cluster.json"


def worker_input(config: pytest.Config) -> dict[str, Any] | None:
    """What the controller sent, on an xdist worker; None on the controller or without xdist."""
    return getattr(config, "workerinput", None)


def run_id_for(config: pytest.Config) -> str:
    """The controller's run id on workers, so every worker names the cluster the same."""
    received = worker_input(config)
    if received and RUN_ID_KEY in received:
        return str(received[RUN_ID_KEY])
    return secrets.token_hex(4)


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
            json.dumps({"name": cluster.name, "timings": timings, "ready": cluster.ready_seconds})
        )
        return cluster


class XdistController:
    """Controller-side hooks; registered only when pytest-xdist is active."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.run_id = run_id_for(config)
        self.share = Path(tempfile.mkdtemp(prefix="kindcluster-xdist-"))

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Hand every worker the run id and the shared directory."""
        node.workerinput[RUN_ID_KEY] = self.run_id
        node.workerinput[SHARE_DIR_KEY] = str(self.share)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count failed kind tests from every worker (the marker travels in the keywords)."""
        if report.failed and "kind" in report.keywords:
            self.config.stash[FAILED_KIND_TESTS] += 1

    def pytest_sessionfinish(self) -> None:
        """After all workers: delete the shared cluster, or keep it as the policy says."""
        marker = self.share / MARKER
        try:
            if not marker.exists() or "error" in json.loads(marker.read_text()):
                return
            state = json.loads(marker.read_text())
            settings = self.config.stash[SETTINGS]
            progress = self.config.stash[PROGRESS]
            report = progress.report_for(state["name"])
            report.timings = [PhaseTiming(**t) for t in state["timings"]]
            report.notes.append(f"ready in {state['ready']:.1f}s (created by an xdist worker)")
            failed = self.config.stash[FAILED_KIND_TESTS] > 0
            cluster = KindCluster(
                state["name"],
                kubeconfig=self.share / "controller" / "kubeconfig",
                retain=settings.retain,
                reuse=settings.reuse,
                logs_dir=settings.logs_dir,
                progress=progress,
            )
            cluster.adopt().close(failed=failed, export_logs=settings.export_logs_after(failed))
        finally:
            shutil.rmtree(self.share, ignore_errors=True)
