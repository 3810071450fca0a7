"""Holds the session's cluster until the outer test says so: a live cluster of a live run.

``KIND_STARTED_FILE`` is written once the cluster is ready; the test then waits for
``KIND_RELEASE_FILE`` to appear, so the outer test decides how long the cluster stays in use.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pytest_kindcluster import KindCluster


def test_holds_the_cluster(kind_cluster: KindCluster) -> None:
    Path(os.environ["KIND_STARTED_FILE"]).write_text(kind_cluster.name)
    release = Path(os.environ["KIND_RELEASE_FILE"])
    deadline = time.monotonic() + 1800
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert release.exists(), "never released"
    assert kind_cluster.kubectl("get", "nodes", "-o", "name").startswith("node/")
