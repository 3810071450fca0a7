"""Signals in a real pytest process: handlers only while a cluster is owned, and teardown wins.

No Docker: the session's engine is the in-memory FakeRuntime, slowed down where a test needs
time to send a signal, and the conftest records what happened in files. Each test starts a real
pytest process and sends it real signals. tests/integration/test_crash_safety.py and
test_signals.py do the same with real clusters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_kindcluster.util.waiting import wait_until

# An engine whose slow spots are switched on by files the test writes, recording into files.
CONFTEST = """
import json, pathlib, signal, time
import pytest
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.runtime.fake import FakeRuntime

readiness.wait_ready = lambda api, **kwargs: {}
HERE = pathlib.Path(__file__).parent


def disposition(signum):
    handler = signal.getsignal(signum)
    if handler is signal.SIG_DFL:
        return "default"
    if handler is signal.default_int_handler:
        return "python"
    return getattr(handler, "__qualname__", str(handler))


def record(key, value):
    path = HERE / "record.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data))


def dispositions():
    return {s.name: disposition(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}


class SlowEngine(FakeRuntime):
    def exec(self, node, argv, **kwargs):
        if tuple(argv[:2]) == ("kubeadm", "init") and (HERE / "slow-init").exists():
            (HERE / "in-init").write_text("yes")
            time.sleep(60)
        return super().exec(node, argv, **kwargs)

    def remove_nodes(self, names):
        record("dispositions-at-removal", dispositions())
        if (HERE / "slow-removal").exists():
            (HERE / "removing").write_text("yes")
            for _ in range(int((HERE / "slow-removal").read_text())):
                time.sleep(0.1)  # a signal interrupts each sleep; only an exception stops this
        super().remove_nodes(names)
        record("removed", sorted(names))


ENGINE = SlowEngine()


@pytest.fixture(scope="session")
def kind_runtime():
    return ENGINE


def pytest_configure(config):
    # Registered before the plugin's own clean-ups, so it runs after every one of them.
    config.add_cleanup(lambda: record("after", dispositions()))
    config.add_cleanup(lambda: record("containers-left", sorted(ENGINE.containers)))
"""
TESTS = """
import pathlib, time
from conftest import dispositions, record

HERE = pathlib.Path(__file__).parent

def test_0_plain():
    record("before", dispositions())

def test_1_kind(kind_cluster):
    record("during", dispositions())
    (HERE / "started").write_text("yes")
    if (HERE / "wait-in-test").exists():
        time.sleep(120)

def test_2_never_reached_when_interrupted(kind_cluster):
    record("second-test", "ran")
"""
MARKED = """
import pytest
pytestmark = pytest.mark.kind_cluster(name="marked")
"""


STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_stray_sessions() -> Iterator[None]:
    """A test that fails half-way must not leave its pytest process running."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start(pytester: pytest.Pytester, *args: str) -> subprocess.Popen[bytes]:
    # Its own temporary directory, where the kubeconfig directories and exported logs go.
    (pytester.path / "tmp").mkdir(exist_ok=True)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"]
    proc = subprocess.Popen(
        [*argv, "-v", "--kind-name=demo", *args],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "TMPDIR": str(pytester.path / "tmp")},
    )
    STARTED.append(proc)
    return proc


def wait_for(path: Path) -> None:
    wait_until(lambda: path.exists() or None, what=str(path), timeout=60, interval=0.05)


def recorded(pytester: pytest.Pytester) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((pytester.path / "record.json").read_text())
    return found


def session(pytester: pytest.Pytester, *, marked: bool = False, **switches: str) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_session=(MARKED if marked else "") + TESTS)
    for name, content in switches.items():
        (pytester.path / name.replace("_", "-")).write_text(content)


DEFAULTS = {"SIGINT": "python", "SIGTERM": "default", "SIGHUP": "default"}
OURS = {name: "TerminationHandler._handle" for name in DEFAULTS}


@pytest.mark.parametrize("marked", [False, True], ids=["default-cluster", "marked-cluster"])
def test_handlers_exist_only_while_a_cluster_is_owned(
    pytester: pytest.Pytester, marked: bool
) -> None:
    session(pytester, marked=marked)
    proc = start(pytester)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()
    found = recorded(pytester)
    assert found["before"] == DEFAULTS  # no cluster yet
    assert found["during"] == OURS
    # Marked clusters are deleted in a config clean-up, after pytest_unconfigure: still covered.
    assert found["dispositions-at-removal"] == OURS
    assert found["after"] == DEFAULTS  # given back once the last cluster is gone
    assert found["containers-left"] == []


def test_a_session_without_kind_tests_never_installs_them(pytester: pytest.Pytester) -> None:
    session(pytester)
    proc = start(pytester, "-k", "plain")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()
    found = recorded(pytester)
    assert found["before"] == DEFAULTS
    assert found["after"] == DEFAULTS


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=str)
def test_a_signal_during_a_test_deletes_the_cluster_and_stops(
    pytester: pytest.Pytester, signum: signal.Signals
) -> None:
    session(pytester, wait_in_test="yes")
    proc = start(pytester)
    wait_for(pytester.path / "started")
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=60)
    text = out.decode()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    assert f"Interrupted: {signum.name} received" in text
    assert "kind demo: deleted" in text
    found = recorded(pytester)
    assert found["containers-left"] == []
    assert "second-test" not in found


@pytest.mark.parametrize(
    ("signum", "marked"),
    [(signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["sigint-default-cluster", "sigterm-marked-cluster"],
)
def test_a_second_signal_during_teardown_does_not_stop_the_deletion(
    pytester: pytest.Pytester, signum: signal.Signals, marked: bool
) -> None:
    session(pytester, marked=marked, wait_in_test="yes", slow_removal="30")
    proc = start(pytester)
    wait_for(pytester.path / "started")
    proc.send_signal(signum)
    wait_for(pytester.path / "removing")
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=60)
    text = out.decode()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    assert f"kindcluster: {signum.name} received again; still deleting " in text
    assert recorded(pytester)["containers-left"] == []
    assert f"kind {'marked' if marked else 'demo'}: deleted" in text


def test_a_third_signal_exits_at_once_naming_what_is_left(pytester: pytest.Pytester) -> None:
    session(pytester, wait_in_test="yes", slow_removal="600")
    proc = start(pytester)
    wait_for(pytester.path / "started")
    proc.send_signal(signal.SIGTERM)
    wait_for(pytester.path / "removing")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # two signals sent at once are one for the kernel and for Python
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    text = out.decode()
    assert proc.returncode == 128 + signal.SIGTERM, text
    assert (
        "kindcluster: SIGTERM received 3 times: exiting now. Left behind: demo. "
        "Remove them with: kind delete cluster --name demo"
    ) in text


def test_ctrl_c_during_create_leaves_nothing(pytester: pytest.Pytester) -> None:
    session(pytester, slow_init="yes")
    proc = start(pytester)
    wait_for(pytester.path / "in-init")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    text = out.decode()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    found = recorded(pytester)
    assert found["removed"] == ["demo-control-plane"]
    assert found["containers-left"] == []
    assert found["after"] == DEFAULTS
    assert not list((pytester.path / "tmp").glob("kindcluster-demo-*"))


def test_a_signal_during_a_rollback_lets_it_finish_then_stops_the_session(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        CONFTEST + "\nENGINE.fail(['kubeadm', 'init'], output='[kubelet-check] unhealthy')\n"
    )
    pytester.makepyfile(test_session=TESTS)
    (pytester.path / "slow-removal").write_text("20")
    proc = start(pytester)
    wait_for(pytester.path / "removing")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    text = out.decode()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text
    assert "kindcluster: SIGTERM received; finishing the removal of demo first" in text
    found = recorded(pytester)
    assert found["removed"] == ["demo-control-plane"]
    assert found["containers-left"] == []
    assert "second-test" not in found  # the session stopped after the rollback


def test_a_handler_the_project_installed_is_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        CONFTEST
        + """
import os

def _own(signum, frame):
    (HERE / "own-handler").write_text("yes")
    os._exit(7)

signal.signal(signal.SIGTERM, _own)
"""
    )
    pytester.makepyfile(test_session=TESTS)
    (pytester.path / "wait-in-test").write_text("yes")
    proc = start(pytester)
    wait_for(pytester.path / "started")
    assert recorded(pytester)["during"]["SIGTERM"] == "_own"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 7
    assert (pytester.path / "own-handler").exists()


def test_an_xdist_controller_without_kind_tests_never_installs_them(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        CONFTEST
        + """
import os

def pytest_runtest_logreport(report):
    if report.when == "call":  # on the controller too, for every test any worker ran
        where = "worker" if os.environ.get("PYTEST_XDIST_WORKER") else "controller"
        record(f"{where}-{report.nodeid}", dispositions())
"""
    )
    pytester.makepyfile(test_session="def test_plain(): pass\n")
    proc = start(pytester, "-n", "1")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out.decode()
    found = recorded(pytester)
    assert found["controller-test_session.py::test_plain"] == DEFAULTS
    assert found["after"] == DEFAULTS
