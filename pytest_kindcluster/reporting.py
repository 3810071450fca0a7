"""Progress on pytest's terminal: each phase with its timing, then the total time to ready.

Fixtures run with output capture on, so lines are written with capture suspended (as pytest's
own --setup-show does); otherwise they would only appear in a failing test's captured output.
"""

from __future__ import annotations

import logging
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_kindcluster.errors import KindClusterError
from pytest_kindcluster.util.progress import LogProgress, PhaseTiming, format_timings

log = logging.getLogger(__name__)


@dataclass
class ClusterReport:
    """What the terminal summary says about one cluster."""

    name: str
    timings: list[PhaseTiming] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ready_seconds: float | None = None

    def lines(self) -> list[str]:
        """Phases on one line, then the notes (ready time, kept, logs)."""
        out = [f"kind {self.name}: {format_timings(self.timings)}"] if self.timings else []
        return out + [f"kind {self.name}: {note}" for note in self.notes]

    def junit_properties(self) -> list[tuple[str, str]]:
        """``kind.<cluster>.phase.<phase>`` seconds, then ``kind.<cluster>.time_to_ready``.

        Plain numbers, so a CI server can chart them; a failed phase is named separately.
        """
        prefix = f"kind.{self.name}"
        props = [(f"{prefix}.phase.{t.name}", f"{t.seconds:.1f}") for t in self.timings]
        props += [(f"{prefix}.failed_phase", t.name) for t in self.timings if not t.ok]
        if self.ready_seconds is not None:
            props.append((f"{prefix}.time_to_ready", f"{self.ready_seconds:.1f}"))
        return props


class TerminalProgress:
    """A Progress that writes to pytest's terminal and keeps a report for the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._log = LogProgress()
        self.reports: dict[str, ClusterReport] = {}

    def report_for(self, cluster: str) -> ClusterReport:
        """The summary entry of a cluster, created on first use."""
        return self.reports.setdefault(cluster, ClusterReport(cluster))

    def _write(self, text: str) -> None:
        manager = self._config.pluginmanager
        terminal: Any = manager.get_plugin("terminalreporter")
        capture: Any = manager.get_plugin("capturemanager")
        if terminal is None:  # -p no:terminal, or an xdist worker: logging still has it
            return
        if capture is None:
            terminal.write_line(text)
            return
        with capture.global_and_fixture_disabled():
            terminal.ensure_newline()
            terminal.write_line(text)

    def alert(self, text: str) -> None:
        """A line on stderr, past output capture, that must be seen now (signal handling)."""
        log.info("%s", text)
        capture: Any = self._config.pluginmanager.get_plugin("capturemanager")
        suspended = capture.global_and_fixture_disabled() if capture else nullcontext()
        with suspended:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def phase_started(self, cluster: str, phase: str) -> None:
        """Logged only; the terminal gets one line per finished phase."""
        self._log.phase_started(cluster, phase)

    def phase_finished(self, cluster: str, timing: PhaseTiming) -> None:
        """``kind <name>: <phase> .... 1.2s``."""
        self._log.phase_finished(cluster, timing)
        self.report_for(cluster).timings.append(timing)
        status = "" if timing.ok else "  FAILED"
        self._write(f"kind {cluster}: {timing.name:<20} {timing.seconds:6.1f}s{status}")

    def note(self, cluster: str, text: str) -> None:
        """A line about the cluster as a whole, also kept for the summary."""
        self._log.note(cluster, text)
        if not text.startswith("creating"):
            self.report_for(cluster).notes.append(text)
        self._write(f"kind {cluster}: {text}")


def shorten_failure(config: pytest.Config, call: pytest.CallInfo[None], report: Any) -> None:
    """A KindClusterError in a fixture's setup or teardown: its message, not a traceback.

    Such errors already say what failed and what to do, with their evidence; the traceback
    below them is the SDK's internals (about 560 lines when Docker is unreachable) and hides the
    message. ``--full-trace``, or DEBUG logging, keeps the whole chain.
    """
    excinfo = call.excinfo
    if report.when == "call" or not report.failed or excinfo is None:
        return
    error = excinfo.value
    if not isinstance(error, KindClusterError):
        return
    log.debug("%s during %s", type(error).__name__, report.when, exc_info=error)
    if config.getoption("fulltrace", False) or _asks_for_debug(config):
        return
    # The phases are on the terminal already, line by line and again in the summary.
    notes = [n for n in getattr(error, "__notes__", []) if not n.startswith("phases: ")]
    lines = [f"{type(error).__name__}: {error}", *notes]
    report.longrepr = "\n".join([*lines, "(--full-trace shows the traceback)"])


def _asks_for_debug(config: pytest.Config) -> bool:
    """Whether pytest was asked to log DEBUG records (``--log-level``, ``--log-cli-level``)."""
    for setting in ("log_level", "log_cli_level"):
        value = str(config.getoption(setting, None) or config.getini(setting) or "").upper()
        level = int(value) if value.isdigit() else logging.getLevelName(value)
        if isinstance(level, int) and level <= logging.DEBUG:
            return True
    return False


PROGRESS = pytest.StashKey[TerminalProgress]()
