"""Progress of a cluster's phases, kept apart from logging (as kind's Status is).

Provisioning reports each phase's start and end to a :class:`Progress`. The default one logs at
INFO; the pytest layer supplies one that writes to the terminal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("pytest_kindcluster")


@dataclass(frozen=True)
class PhaseTiming:
    """How long one phase took, and whether it succeeded."""

    name: str
    seconds: float
    ok: bool


class Progress(Protocol):
    """Receives phase boundaries and short notes for one or more clusters."""

    def phase_started(self, cluster: str, phase: str) -> None:
        """A phase begins."""
        ...

    def phase_finished(self, cluster: str, timing: PhaseTiming) -> None:
        """A phase ended, successfully or not."""
        ...

    def note(self, cluster: str, text: str) -> None:
        """A one-line message about the cluster as a whole."""
        ...


class LogProgress:
    """Progress as INFO log records; adds no handlers, so the application decides where they go."""

    def phase_started(self, cluster: str, phase: str) -> None:
        """Log the start of a phase."""
        log.info("kind %s: %s ...", cluster, phase)

    def phase_finished(self, cluster: str, timing: PhaseTiming) -> None:
        """Log the end of a phase with its duration."""
        outcome = "done" if timing.ok else "FAILED"
        log.info("kind %s: %s %s in %.1fs", cluster, timing.name, outcome, timing.seconds)

    def note(self, cluster: str, text: str) -> None:
        """Log a note."""
        log.info("kind %s: %s", cluster, text)


def format_timings(timings: list[PhaseTiming]) -> str:
    """``nodes 2.1s, kubeadm-init 21.0s, ...``: one line for summaries and errors."""
    return ", ".join(f"{t.name} {t.seconds:.1f}s" + ("" if t.ok else " (failed)") for t in timings)
