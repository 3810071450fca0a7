"""Who owns a cluster: the labels every container and volume carries, and whether the owner lives.

A cluster outlives its creator when that process is killed (SIGKILL, OOM, a CI runner timing out):
no teardown runs. The labels written at creation let a later run tell such an orphan from a
cluster still in use, as testcontainers' Ryuk does with its session labels, but without a
long-running reaper container: the next run checks whether the owner process still exists.

A pid alone is not an identity. The same number can belong to another process later, and a pid
from another machine (a shared remote ``DOCKER_HOST``) or another container means nothing here.
So the owner is (host name, pid, process start time), and only an owner on this host whose pid
is gone, or now belongs to a process that started at another time, counts as gone.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from pytest_kindcluster.contract import (
    CREATED_LABEL,
    OWNER_HOST_LABEL,
    OWNER_PID_LABEL,
    OWNER_STARTED_LABEL,
    RETAIN_LABEL,
    RUN_ID_LABEL,
)

CREATED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class OwnerState(Enum):
    """What the labels say about the process that created a cluster."""

    ALIVE = "alive"
    GONE = "gone"
    # On another host or without our labels: nothing here can tell, so it is left alone.
    UNKNOWN = "unknown"


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22).

    Empty where there is no procfs (macOS): the pid check alone is then all there is.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses; fields resume after the last ")".
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but it exists
    return True


@dataclass(frozen=True)
class Owner:
    """The process that decides a cluster's fate (under xdist: the controller, not a worker)."""

    host: str
    pid: int
    started: str

    @classmethod
    def of(cls, pid: int | None = None) -> Owner:
        """This process, or another process of this host by pid."""
        pid = os.getpid() if pid is None else pid
        return cls(socket.gethostname(), pid, process_start(pid))

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Owner | None:
        """The owner recorded on a container or volume; None without (valid) owner labels."""
        try:
            pid = int(labels[OWNER_PID_LABEL])
        except (KeyError, ValueError):
            return None
        return cls(labels.get(OWNER_HOST_LABEL, ""), pid, labels.get(OWNER_STARTED_LABEL, ""))

    def labels(self) -> dict[str, str]:
        """The owner's labels."""
        return {
            OWNER_HOST_LABEL: self.host,
            OWNER_PID_LABEL: str(self.pid),
            OWNER_STARTED_LABEL: self.started,
        }

    def state(self) -> OwnerState:
        """Whether this owner still runs; UNKNOWN when it ran on another host."""
        if self.host != socket.gethostname():
            return OwnerState.UNKNOWN
        if not _pid_exists(self.pid):
            return OwnerState.GONE
        if self.started and self.started != process_start(self.pid):
            return OwnerState.GONE  # the pid was reused by a later process
        return OwnerState.ALIVE


def cluster_labels(owner: Owner, run_id: str, retain: str) -> dict[str, str]:
    """Everything a cluster's containers, volumes and network carry besides kind's own labels."""
    return {
        **owner.labels(),
        RUN_ID_LABEL: run_id,
        CREATED_LABEL: datetime.now(UTC).strftime(CREATED_FORMAT),
        RETAIN_LABEL: retain,
    }


def age_of(labels: Mapping[str, str]) -> str:
    """``3h12m`` since the created label, for reports; ``?`` if the label is missing or bad."""
    try:
        created = datetime.strptime(labels[CREATED_LABEL], CREATED_FORMAT).replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return "?"
    minutes = int((datetime.now(UTC) - created).total_seconds() // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
