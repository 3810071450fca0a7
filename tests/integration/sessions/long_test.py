"""A test that signals it is running on the cluster, then waits to be interrupted."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pytest_kindcluster import KindCluster


def test_running_when_the_signal_comes(kind_cluster: KindCluster) -> None:
    Path(os.environ["KIND_STARTED_FILE"]).write_text(kind_cluster.name)
    time.sleep(600)


def test_never_reached(kind_cluster: KindCluster) -> None:
    raise AssertionError("the session was stopped before this test")
