"""SIGTERM unwinds a pytest session the way Ctrl-C does, so session teardown still runs.

A real pytest process gets a real signal; no Docker is needed, the "cluster" is a session
fixture whose teardown leaves a file behind. tests/integration/test_crash_safety.py does the
same with real clusters.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_kindcluster.util.waiting import wait_until

CONFTEST = """
import pathlib, pytest

@pytest.fixture(scope="session")
def resource():
    yield
    pathlib.Path("torn-down").write_text("yes")
"""
TESTS = """
import pathlib, time

def test_long(resource):
    pathlib.Path("started").write_text("yes")
    time.sleep(120)

def test_never_reached(resource):
    pass
"""


def start(pytester: pytest.Pytester) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for(path: Path) -> None:
    wait_until(lambda: path.exists() or None, what=str(path), timeout=60, interval=0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_termination_signal_runs_session_teardown(
    pytester: pytest.Pytester, signum: signal.Signals
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(TESTS)
    proc = start(pytester)
    wait_for(pytester.path / "started")
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=60)
    text = out.decode()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    assert (pytester.path / "torn-down").read_text() == "yes", text
    # pytest's own interrupted path (as for Ctrl-C), not a crash, and no further tests ran.
    assert f"Interrupted: {signum.name} received" in text
    assert "no tests ran" in text


def test_a_handler_the_project_installed_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        CONFTEST
        + """
import os, signal

def _own(signum, frame):
    pathlib.Path("own-handler").write_text("yes")
    os._exit(7)

signal.signal(signal.SIGTERM, _own)
"""
    )
    pytester.makepyfile(TESTS)
    proc = start(pytester)
    wait_for(pytester.path / "started")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 7
    assert (pytester.path / "own-handler").exists()
    assert not (pytester.path / "torn-down").exists()
