"""Four tests over two xdist workers, all on one shared cluster; run by test_sessions.py.

Each test records which worker ran it and which cluster it saw in $KIND_XDIST_RECORD_DIR.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_kindcluster import KindCluster


@pytest.mark.parametrize("n", range(4))
def test_sees_the_shared_cluster(n: int, kind_cluster: KindCluster, kind_namespace: str) -> None:
    record = Path(os.environ["KIND_XDIST_RECORD_DIR"]) / f"{n}.json"
    worker = os.environ.get("PYTEST_XDIST_WORKER", "none")
    kind_cluster.kubectl("get", "namespace", kind_namespace)
    record.write_text(
        json.dumps(
            {"worker": worker, "cluster": kind_cluster.name, "attached": kind_cluster.reused}
        )
    )
