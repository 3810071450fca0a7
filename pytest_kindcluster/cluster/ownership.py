"""Who owns a cluster: the labels every container and volume carries, and whether the owner lives.

A cluster outlives its creator when that process is killed (SIGKILL, OOM, a CI runner timing out):
no teardown runs. The labels written at creation let a later run tell such an orphan from a
cluster still in use, as testcontainers' Ryuk does with its session labels, but without a
long-running reaper container: the next run checks whether the owner process still exists.

A pid alone is not an identity, and one Docker engine is often shared by processes that cannot
see each other: containers with one socket and one host name but separate PID namespaces
(``hostNetwork`` pods, ``--uts=host``, compose ``hostname:``), machines sharing a remote
``DOCKER_HOST``, ``/proc`` mounted with ``hidepid=2``. So the owner is recorded as (host name,
boot id, PID namespace, pid, process start time), and an owner counts as gone only when all of
that can be checked from here and proves it: same host, same boot, same PID namespace, and the
pid absent or now a process that started at another time. Anything less is UNKNOWN, and an
unknown owner's cluster is left alone (see reaper.py).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path

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

CREATED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
PROC = Path("/proc")


class OwnerState(Enum):
    """What the labels say about the process that created a cluster."""

    ALIVE = "alive"
    GONE = "gone"
    # Nothing here can prove it either way: the cluster is left alone.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    """An owner's state, and the reason in words for the terminal."""

    state: OwnerState
    reason: str


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _readlink(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:
        return ""


def _stat_start(text: str) -> str | None:
    """Field 22 of ``/proc/<pid>/stat``: the start time in clock ticks since boot."""
    # The command name (field 2) may hold spaces and parentheses; fields resume after the last ")".
    fields = text.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


class HostView:
    """What this process can see of its host's processes, read from procfs.

    ``proc`` is where procfs is mounted; tests point it at a directory of fake files.
    """

    def __init__(self, proc: Path = PROC) -> None:
        self.proc = proc
        self.host = socket.gethostname()
        # One per kernel boot, shared by every container of the host (not namespaced).
        self.boot_id = _read(proc / "sys/kernel/random/boot_id")
        # "pid:[4026531836]": the inode identifies the namespace while it exists.
        match = re.fullmatch(r"pid:\[(\d+)\]", _readlink(proc / "self/ns/pid"))
        self.pid_ns = match.group(1) if match else ""
        # procfs lists the processes of the PID namespace it was mounted in; `unshare --pid`
        # without `--mount-proc` leaves the parent's, where our pids name other processes.
        self.own_procfs = _readlink(proc / "self") == str(os.getpid())

    def pid_exists(self, pid: int) -> bool:
        """Whether ``pid`` is a process of our PID namespace (kill(0) looks there, not in /proc)."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # someone else's process, but it exists
        return True

    def start_time(self, pid: int) -> str | None:
        """The process's start time (clock ticks since boot); None when it cannot be read.

        Unreadable: no procfs (macOS), a procfs of another namespace, the process is gone, or
        ``hidepid=2`` hides other users' processes.
        """
        if pid == os.getpid():
            return _stat_start(_read(self.proc / "self/stat"))
        if not self.own_procfs:
            return None
        return _stat_start(_read(self.proc / str(pid) / "stat"))


@dataclass(frozen=True)
class Owner:
    """The process that decides a cluster's fate (under xdist: the controller, not a worker).

    Empty ``started``, ``pid_ns`` or ``boot_id`` mean "could not be read when the cluster was
    made" (or made by an older version without those labels): such an owner is never proven gone.
    """

    host: str
    pid: int
    started: str
    pid_ns: str = ""
    boot_id: str = ""

    @classmethod
    def of(cls, pid: int | None = None, view: HostView | None = None) -> Owner:
        """This process, or another process of its PID namespace by pid."""
        view = view or HostView()
        pid = os.getpid() if pid is None else pid
        return cls(view.host, pid, view.start_time(pid) or "", view.pid_ns, view.boot_id)

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Owner | None:
        """The owner recorded on a container or volume; None without (valid) owner labels."""
        try:
            pid = int(labels[OWNER_PID_LABEL])
        except (KeyError, ValueError):
            return None
        return cls(
            labels.get(OWNER_HOST_LABEL, ""),
            pid,
            labels.get(OWNER_STARTED_LABEL, ""),
            labels.get(OWNER_PIDNS_LABEL, ""),
            labels.get(OWNER_BOOT_LABEL, ""),
        )

    def labels(self) -> dict[str, str]:
        """The owner's labels."""
        return {
            OWNER_HOST_LABEL: self.host,
            OWNER_PID_LABEL: str(self.pid),
            OWNER_STARTED_LABEL: self.started,
            OWNER_PIDNS_LABEL: self.pid_ns,
            OWNER_BOOT_LABEL: self.boot_id,
        }

    def verdict(self, view: HostView | None = None) -> Verdict:
        """ALIVE or GONE only when ``view`` can prove it; UNKNOWN, with the reason, otherwise."""
        view = view or HostView()
        who = f"owner pid {self.pid} on {self.host}"
        if why := self._out_of_sight(view):
            return Verdict(OwnerState.UNKNOWN, f"{who}: {why}")
        if not view.pid_exists(self.pid):
            return Verdict(OwnerState.GONE, f"{who} is gone")
        now = view.start_time(self.pid)
        if not self.started or now is None:
            return Verdict(
                OwnerState.UNKNOWN, f"{who}: the pid exists but its start time cannot be read"
            )
        if now != self.started:
            return Verdict(OwnerState.GONE, f"{who} is gone (the pid was reused)")
        return Verdict(OwnerState.ALIVE, f"{who} is running")

    def _out_of_sight(self, view: HostView) -> str:
        """Why this owner's pid means nothing to ``view``; empty when it is in sight."""
        checks = (
            (self.host != view.host, "another host"),
            (not (self.boot_id and self.pid_ns), "no boot or PID-namespace label"),
            (not (view.boot_id and view.pid_ns), f"this process cannot read {view.proc}"),
            # A reboot, or another machine with the same host name sharing the engine.
            (self.boot_id != view.boot_id, "another boot or machine"),
            (self.pid_ns != view.pid_ns, "another PID namespace"),
        )
        return next((why for differs, why in checks if differs), "")

    def state(self, view: HostView | None = None) -> OwnerState:
        """Whether this owner still runs, as far as ``view`` can prove."""
        return self.verdict(view).state


def cluster_labels(owner: Owner, run_id: str, retain: str) -> dict[str, str]:
    """Everything a cluster's containers and volumes carry besides kind's own labels."""
    return {
        **owner.labels(),
        RUN_ID_LABEL: run_id,
        CREATED_LABEL: datetime.now(UTC).strftime(CREATED_FORMAT),
        RETAIN_LABEL: retain,
    }


def created_at(labels: Mapping[str, str]) -> datetime | None:
    """When the cluster was created, from its label; None if the label is missing or bad."""
    try:
        return datetime.strptime(labels[CREATED_LABEL], CREATED_FORMAT).replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return None


def age(labels: Mapping[str, str]) -> timedelta | None:
    """Time since the created label; None if it is missing or bad."""
    created = created_at(labels)
    return None if created is None else datetime.now(UTC) - created


def age_of(labels: Mapping[str, str]) -> str:
    """``3h12m`` since the created label, for reports; ``?`` if the label is missing or bad."""
    elapsed = age(labels)
    if elapsed is None:
        return "?"
    minutes = int(elapsed.total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
