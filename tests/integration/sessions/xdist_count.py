"""Eight tests over xdist workers; each counts the run's clusters while the run is going.

Run by test_crash_safety.py with ``-n 4``; also the suite timed with ``-n 1`` and ``-n 4``
(bench/crash_safety.py). Each test writes what it saw to $KIND_XDIST_RECORD_DIR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import docker
import pytest
from kubernetes import client as k8s_client

from pytest_kindcluster import KindCluster
from pytest_kindcluster.util.waiting import wait_until

CLUSTER_LABEL = "io.x-k8s.kind.cluster"
RUN_ID_LABEL = "dev.pytest-kindcluster.run-id"
OWNER_PID_LABEL = "dev.pytest-kindcluster.owner-pid"


def clusters_now(run_id: str) -> dict[str, set[str]]:
    """Clusters of this run and clusters of any run, as the engine lists them right now."""
    engine = docker.from_env()
    try:
        ours = engine.containers.list(all=True, filters={"label": f"{RUN_ID_LABEL}={run_id}"})
        owners = {c.labels[OWNER_PID_LABEL] for c in ours}
        return {"run": {c.labels[CLUSTER_LABEL] for c in ours}, "owners": owners}
    finally:
        engine.close()


@pytest.mark.parametrize("n", range(8))
def test_work_on_the_shared_cluster(
    n: int, kind_cluster: KindCluster, kind_client: Any, kind_namespace: str
) -> None:
    seen = clusters_now(kind_cluster.run_id)
    # Real work, so the suite has something to parallelise: a pod run to completion.
    core: Any = k8s_client.CoreV1Api(kind_client)
    core.create_namespaced_pod(
        kind_namespace,
        {
            "metadata": {"name": "work"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "work",
                        "image": "busybox:1.36",
                        "imagePullPolicy": "Never",
                        "command": ["sh", "-c", "sleep 2; echo done"],
                    }
                ],
            },
        },
    )
    phase = wait_until(
        lambda: {"Succeeded": "ok", "Failed": "failed"}.get(
            core.read_namespaced_pod("work", kind_namespace).status.phase
        ),
        what="the work pod",
        timeout=120,
        interval=0.5,
    )
    assert phase == "ok"
    record = {
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "cluster": kind_cluster.name,
        "clusters_of_run": sorted(seen["run"]),
        "owner_pids": sorted(seen["owners"]),
        "controller_pid": os.getppid(),
        "attached": kind_cluster.reused,
    }
    Path(os.environ["KIND_XDIST_RECORD_DIR"], f"{n}.json").write_text(json.dumps(record))
