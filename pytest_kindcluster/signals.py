"""SIGINT, SIGTERM and SIGHUP while the session owns a cluster: tear down, and finish tearing down.

Python turns SIGINT into KeyboardInterrupt, and pytest then still runs fixture teardown and
``pytest_sessionfinish``. SIGTERM, what CI runners, ``timeout`` and container stops send, kills
the process outright by default, leaking every node container (the complaint of kind and
pytest-kind users alike). Raising KeyboardInterrupt from the handler gives SIGTERM the same
orderly path. SystemExit would not do: pytest reports it as a failure of the running test and
carries on with the next one.

The handlers exist only while the session owns a cluster: the fixtures call
:meth:`TerminationHandler.acquire` when a create starts and :meth:`~TerminationHandler.release`
when its teardown has ended (the xdist controller, which deletes what its workers made, holds
them from the end of a collection that found kind tests). A session that never creates a
cluster never touches its signal dispositions, and the previous handlers come back afterwards.

While they are installed:

1. the first signal stops the session (``Interrupted``), unless a removal is under way
   (``util.interrupts.shielded``): then the removal finishes first and the session stops after;
2. the second never interrupts anything: deleting what the session made takes priority;
3. the third exits at once (status 128 + signal number), after naming on stderr the clusters
   left behind and how to remove them: for a supervisor that cannot wait.

Only signals still at their default disposition are taken over: a handler someone else
installed, or an ignored SIGHUP (``nohup``), stays as it is.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from pytest_kindcluster.errors import Interrupted
from pytest_kindcluster.util import interrupts

log = logging.getLogger(__name__)

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# What "not taken over by anyone" looks like for each signal: Python installs its own SIGINT
# handler at start-up; the others start at the OS default.
_DEFAULTS: dict[signal.Signals, Any] = {
    signal.SIGINT: signal.default_int_handler,
    signal.SIGTERM: signal.SIG_DFL,
    signal.SIGHUP: signal.SIG_DFL,
}
# The signal that gives up on the teardown and exits, leaving the clusters behind.
FORCE_EXIT_AT = 3


def _stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class TerminationHandler:
    """The session's signal handlers, installed while it owns at least one cluster."""

    def __init__(self, say: Callable[[str], None] = _stderr) -> None:
        # Where messages go while a signal is being handled: the terminal, past output capture.
        self._say = say
        self._previous: dict[signal.Signals, Any] = {}
        # Cluster name -> how many holders (a create, a marked cluster, the xdist controller).
        self._owned: dict[str, int] = {}
        self.received: signal.Signals | None = None
        self.count = 0
        self._raised = False

    @property
    def installed(self) -> bool:
        """Whether any handler of ours is in place now."""
        return bool(self._previous)

    @property
    def owned(self) -> list[str]:
        """The clusters the session holds now, in the order it took them."""
        return list(self._owned)

    def acquire(self, cluster: str) -> None:
        """The session starts owning ``cluster`` (a create begins): install on the first one."""
        if not self._owned:
            self._install()
        self._owned[cluster] = self._owned.get(cluster, 0) + 1

    def release(self, cluster: str) -> None:
        """The session is done with ``cluster`` (teardown ended): restore after the last one."""
        left = self._owned.get(cluster, 0) - 1
        if left > 0:
            self._owned[cluster] = left
        else:
            self._owned.pop(cluster, None)
        if not self._owned:
            self._uninstall()

    def release_all(self) -> None:
        """Restore the previous handlers whatever is still held (the session is over)."""
        self._owned.clear()
        self._uninstall()

    def raise_pending(self) -> None:
        """Stop the session now if a first signal was held back while a removal finished."""
        if self.received is not None and not self._raised:
            self._raised = True
            raise Interrupted(f"{self.received.name} received")

    def _install(self) -> None:
        # signal.signal only works in the main thread (an in-process pytester run may not be).
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in HANDLED:
            if signal.getsignal(signum) is _DEFAULTS[signum]:
                self._previous[signum] = signal.signal(signum, self._handle)

    def _uninstall(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.count += 1
        clusters = ", ".join(self._owned) or "none"
        if self.count == 1:
            self.received = signal.Signals(signum)
            if not interrupts.active():
                self._raised = True
                log.warning("%s received: stopping the session; deleting %s", name, clusters)
                raise Interrupted(f"{name} received")
            self._say(f"kindcluster: {name} received; finishing the removal of {clusters} first")
            return
        if self.count < FORCE_EXIT_AT:
            self._say(
                f"kindcluster: {name} received again; still deleting {clusters}. Once more "
                "exits at once and leaves them behind."
            )
            return
        remove = "; ".join(f"kind delete cluster --name {c}" for c in self._owned)
        self._say(
            f"kindcluster: {name} received {self.count} times: exiting now. Left behind: "
            f"{clusters}." + (f" Remove them with: {remove}" if remove else "")
        )
        os._exit(128 + signum)


# The session's handler, in config.stash so that hooks and fixtures share it.
TERMINATION = pytest.StashKey[TerminationHandler]()
