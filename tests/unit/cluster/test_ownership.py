"""Whether a cluster's owner is proven alive, proven gone, or cannot be told from here.

Procfs is read for real from a directory of fake files (``HostView(proc=...)``), and the
decisions are checked against a view whose facts the test sets: another host, boot or PID
namespace, a hidden ``/proc``, labels of an older version.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_kindcluster.cluster.ownership import (
    HostView,
    Owner,
    OwnerState,
    age_of,
    cluster_labels,
)
from pytest_kindcluster.contract import (
    CREATED_LABEL,
    OWNER_BOOT_LABEL,
    OWNER_HOST_LABEL,
    OWNER_PID_LABEL,
    OWNER_PIDNS_LABEL,
    OWNER_STARTED_LABEL,
    RETAIN_LABEL,
    RUN_ID_LABEL,
)

BOOT = "e7ba2bd4-f758-48ac-b1a8-1961e78ab0a9"
NS = "4026531836"


class View(HostView):
    """A host view whose facts the test sets: ``pids`` maps each live pid to its start time
    (None: the process exists but its start time cannot be read, as under hidepid=2)."""

    def __init__(
        self,
        pids: dict[int, str | None],
        *,
        host: str = "box",
        boot: str = BOOT,
        pid_ns: str = NS,
    ) -> None:
        self.proc = Path("/fake/proc")
        self.host, self.boot_id, self.pid_ns, self.own_procfs = host, boot, pid_ns, True
        self.pids = pids

    def pid_exists(self, pid: int) -> bool:
        return pid in self.pids

    def start_time(self, pid: int) -> str | None:
        return self.pids.get(pid)


def owner(pid: int = 100, started: str = "5000", **kwargs: str) -> Owner:
    fields = {"host": "box", "pid_ns": NS, "boot_id": BOOT, **kwargs}
    return Owner(fields["host"], pid, started, fields["pid_ns"], fields["boot_id"])


def fake_proc(root: Path, *, self_pid: int, stats: dict[int, str]) -> Path:
    """A procfs tree: ``self`` -> ``self_pid``, each pid's ``stat``, our namespace and boot."""
    for pid, stat in stats.items():
        (root / str(pid)).mkdir(parents=True, exist_ok=True)
        (root / str(pid) / "stat").write_text(stat)
    (root / str(self_pid) / "ns").mkdir(parents=True, exist_ok=True)
    (root / str(self_pid) / "ns" / "pid").symlink_to(f"pid:[{NS}]")
    (root / "self").symlink_to(str(self_pid))
    (root / "sys/kernel/random").mkdir(parents=True)
    (root / "sys/kernel/random/boot_id").write_text(BOOT + "\n")
    return root


def stat_line(pid: int, comm: str, start: int) -> str:
    # Fields 3..21 before the start time (22); the command name may hold spaces and ")".
    return f"{pid} ({comm}) S " + " ".join(["0"] * 18) + f" {start} 0 0\n"


def test_procfs_is_read_for_namespace_boot_and_start_times(tmp_path: Path) -> None:
    me = os.getpid()
    proc = fake_proc(
        tmp_path,
        self_pid=me,
        stats={me: stat_line(me, "python", 111), 4242: stat_line(4242, "odd ) name", 222)},
    )
    view = HostView(proc)
    assert (view.boot_id, view.pid_ns, view.own_procfs) == (BOOT, NS, True)
    assert view.start_time(me) == "111"
    assert view.start_time(4242) == "222"  # parsed after the last ")"
    assert view.start_time(4343) is None  # gone, or hidden by hidepid=2
    assert view.host == socket.gethostname()
    assert Owner.of(view=view) == Owner(view.host, me, "111", NS, BOOT)


def test_a_procfs_of_another_pid_namespace_tells_no_start_times(tmp_path: Path) -> None:
    # `unshare --pid --fork` without --mount-proc: /proc/self is our pid in the parent's
    # numbering, so /proc/<our pid> would be some other process.
    me = os.getpid()
    proc = tmp_path
    (proc / "7").mkdir()
    (proc / "7" / "stat").write_text(stat_line(7, "python", 333))
    (proc / str(me)).mkdir()
    (proc / str(me) / "stat").write_text(stat_line(me, "someone else", 999))
    (proc / "self").symlink_to("7")
    view = HostView(proc)
    assert not view.own_procfs
    assert view.start_time(me) == "333"  # our own, through /proc/self
    assert view.start_time(4242) is None


def test_no_procfs_at_all(tmp_path: Path) -> None:
    view = HostView(tmp_path / "missing")
    assert (view.boot_id, view.pid_ns, view.own_procfs) == ("", "", False)
    verdict = owner(host=view.host).verdict(view)
    assert verdict.state is OwnerState.UNKNOWN
    assert f"this process cannot read {tmp_path / 'missing'}" in verdict.reason


def test_this_process_on_the_real_proc() -> None:
    me = Owner.of()
    view = HostView()
    assert me.pid == os.getpid()
    assert me.started != ""
    assert me.pid_ns == str(Path("/proc/self/ns/pid").readlink()).removeprefix("pid:[").rstrip("]")
    assert me.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert me.state() is OwnerState.ALIVE
    assert Owner.from_labels(me.labels()) == me
    assert view.own_procfs


def test_an_exited_child_is_gone_on_the_real_proc() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = Owner.of(child.pid)
    assert gone.started == ""  # read after it exited
    assert gone.state() is OwnerState.GONE


@pytest.mark.parametrize(
    ("recorded", "view", "state", "reason"),
    [
        (owner(), View({100: "5000"}), OwnerState.ALIVE, "owner pid 100 on box is running"),
        (owner(), View({}), OwnerState.GONE, "owner pid 100 on box is gone"),
        (owner(), View({100: "6000"}), OwnerState.GONE, "is gone (the pid was reused)"),
        # The cases that used to count as gone and reaped live clusters:
        (owner(), View({}, pid_ns="4026532001"), OwnerState.UNKNOWN, "another PID namespace"),
        (owner(), View({100: None}), OwnerState.UNKNOWN, "start time cannot be read"),
        # And what a pid check cannot speak for:
        (owner(), View({}, host="other"), OwnerState.UNKNOWN, "another host"),
        (owner(), View({}, boot="another-boot"), OwnerState.UNKNOWN, "another boot or machine"),
        (owner(pid_ns="", boot_id=""), View({}), OwnerState.UNKNOWN, "no boot or PID-namespace"),
        (owner(started=""), View({100: "5000"}), OwnerState.UNKNOWN, "cannot be read"),
        (owner(started=""), View({}), OwnerState.GONE, "is gone"),
    ],
    ids=[
        "alive",
        "pid-absent",
        "pid-reused",
        "other-pid-namespace",
        "hidepid",
        "other-host",
        "other-boot",
        "older-version-labels",
        "start-unknown-pid-present",
        "start-unknown-pid-absent",
    ],
)
def test_verdicts(recorded: Owner, view: View, state: OwnerState, reason: str) -> None:
    verdict = recorded.verdict(view)
    assert verdict.state is state
    assert reason in verdict.reason


def test_labels_carry_owner_namespace_boot_run_creation_and_retention() -> None:
    labels = cluster_labels(owner(), "abc123", "on-failure")
    assert labels[RUN_ID_LABEL] == "abc123"
    assert labels[RETAIN_LABEL] == "on-failure"
    assert labels[OWNER_PIDNS_LABEL] == NS
    assert labels[OWNER_BOOT_LABEL] == BOOT
    assert {OWNER_HOST_LABEL, OWNER_PID_LABEL, OWNER_STARTED_LABEL, CREATED_LABEL} <= set(labels)
    assert Owner.from_labels(labels) == owner()
    assert age_of(labels) == "0m"
    assert age_of({}) == "?"
    assert Owner.from_labels({OWNER_PID_LABEL: "not a pid"}) is None
    assert Owner.from_labels({}) is None
    # An older version's labels: no namespace or boot, which is never proof of anything.
    old = Owner.from_labels({OWNER_HOST_LABEL: "box", OWNER_PID_LABEL: "100"})
    assert old == Owner("box", 100, "", "", "")
