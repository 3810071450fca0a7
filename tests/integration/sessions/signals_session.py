"""A session on a real cluster that records its signal handlers and when removal starts.

Run by tests/integration/test_interrupts.py. ``KIND_SIGNALS_DIR`` is where it writes; with
``KIND_MARKED`` the tests use a marked cluster of that name (deleted in a config clean-up, after
pytest_unconfigure); with ``KIND_WAIT`` the kind test waits for the signal; ``KIND_SLOW_REMOVAL``
(tenths of a second) holds the removal back, to leave time for several signals.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_kindcluster import KindCluster
from pytest_kindcluster.runtime.docker.runtime import DockerRuntime

RECORD = Path(os.environ["KIND_SIGNALS_DIR"])


def disposition(signum: signal.Signals) -> str:
    handler = signal.getsignal(signum)
    if handler is signal.SIG_DFL:
        return "default"
    if handler is signal.default_int_handler:
        return "python"
    return str(getattr(handler, "__qualname__", handler))


def dispositions() -> dict[str, str]:
    return {s.name: disposition(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}


def record(key: str, value: object) -> None:
    path = RECORD / "record.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data))


_remove_nodes = DockerRuntime.remove_nodes


def remove_nodes(self: DockerRuntime, names: Sequence[str]) -> None:
    """The real removal, announced first so the outer test can signal during it."""
    record("dispositions-at-removal", dispositions())
    (RECORD / "removing").write_text(" ".join(names))
    for _ in range(int(os.environ.get("KIND_SLOW_REMOVAL", "0"))):
        time.sleep(0.1)  # time for the outer test's signals; each one interrupts a sleep
    _remove_nodes(self, names)
    record("removed", sorted(names))


DockerRuntime.remove_nodes = remove_nodes  # type: ignore[method-assign]
# After pytest's own clean-ups, the plugin's included.
atexit.register(lambda: record("after", dispositions()))

if os.environ.get("KIND_MARKED"):
    pytestmark = pytest.mark.kind_cluster(name=os.environ["KIND_MARKED"])


def test_0_plain() -> None:
    record("before", dispositions())


def test_1_on_the_cluster(kind_cluster: KindCluster) -> None:
    record("during", dispositions())
    (RECORD / "started").write_text(kind_cluster.name)
    if os.environ.get("KIND_WAIT"):
        time.sleep(600)


def test_2_not_reached_when_interrupted(kind_cluster: KindCluster) -> None:
    record("second-test", "ran")
