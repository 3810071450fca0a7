"""Sections a termination signal must not cut short: deleting a cluster, rolling one back.

A signal handler raises its exception wherever the main thread happens to be. If that is the
middle of removing node containers, the rest are never removed, and an interrupted removal is the
very leak the handler exists to prevent. The lifecycle marks such sections with
:func:`shielded`; the pytest layer's handler (``signals.py``) asks :func:`active` and, inside a
shield, lets the removal finish instead of raising.

Without that handler (``KindCluster`` used as a library, Python's default SIGINT handler) a
shield changes nothing: Ctrl-C still raises ``KeyboardInterrupt`` at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0


@contextmanager
def shielded() -> Iterator[None]:
    """Mark the enclosed block as clean-up that a first signal must let finish."""
    global _depth  # noqa: PLW0603 - signal handlers are process-wide, and so is this state
    with _lock:
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1


def active() -> bool:
    """True while any thread is inside a :func:`shielded` block."""
    return _depth > 0
