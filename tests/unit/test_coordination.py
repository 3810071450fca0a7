"""xdist coordination without xdist: the lock between workers and what its timeout says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from pytest_kindcluster.coordination import shared_cluster
from pytest_kindcluster.errors import KindClusterError, LockTimeout


def test_a_create_lock_held_too_long_is_our_error_naming_the_fix(tmp_path: Path) -> None:
    def make(attach: bool) -> Any:
        raise AssertionError("must not run without the lock")

    # Another worker holds the lock (another open file description: flock conflicts).
    with FileLock(str(tmp_path / "create.lock")), pytest.raises(LockTimeout) as info:
        shared_cluster(tmp_path, make, budget=0.2)
    error = info.value
    assert isinstance(error, KindClusterError)
    assert isinstance(error, TimeoutError)
    assert str(error).startswith("waited 0.2s for another xdist worker to create the cluster")
    assert "--kind-timeout" in str(error)
    assert str(tmp_path / "create.lock") in str(error)
