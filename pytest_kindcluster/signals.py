"""SIGTERM (and SIGHUP) unwind the session like Ctrl-C, so clusters are torn down.

Python turns SIGINT into KeyboardInterrupt, and pytest then still runs fixture teardown and
``pytest_sessionfinish``. SIGTERM, what CI runners, ``timeout`` and container stops send, kills
the process outright by default, leaking every node container (the complaint of kind and
pytest-kind users alike). Raising KeyboardInterrupt from the handler gives SIGTERM the same
orderly path. SystemExit would not do: pytest reports it as a failure of the running test and
carries on with the next one.

Only signals still at their default disposition are taken over: a handler someone else
installed, or an ignored SIGHUP (``nohup``), stays as it is.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from pytest_kindcluster.errors import Interrupted

log = logging.getLogger(__name__)

HANDLED = (signal.SIGTERM, signal.SIGHUP)


class TerminationHandler:
    """Installs the handlers for the session, and restores what was there afterwards."""

    def __init__(self) -> None:
        self._previous: dict[signal.Signals, Any] = {}
        self.received: signal.Signals | None = None

    def install(self) -> None:
        """Take over SIGTERM and SIGHUP where they still have their default action."""
        # signal.signal only works in the main thread (an in-process pytester run may not be).
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in HANDLED:
            if signal.getsignal(signum) is signal.SIG_DFL:
                self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        """Put back the previous handlers."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum)
        if self.received is not None:
            # Teardown is under way; a second signal must not cut it short and leak nodes. A
            # supervisor that cannot wait escalates to SIGKILL, and the next run reaps.
            log.warning("%s received again; still tearing down", name.name)
            return
        self.received = name
        log.warning("%s received: stopping the session and tearing down clusters", name.name)
        raise Interrupted(f"{name.name} received")
