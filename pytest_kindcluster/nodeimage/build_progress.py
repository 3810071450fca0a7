"""Progress for long builds: phases with timings, kept apart from logging.

Phase lines go to stderr so that stdout carries only the result (the image reference as its last
line), which scripts capture with ``$(python -m pytest_kindcluster node-image build)``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class BuildProgress:
    """Prints ``[n/total] phase ... done in X.Xs`` lines and a heartbeat for slow phases."""

    def __init__(
        self, total: int = 0, stream: TextIO | None = None, heartbeat: float = 30.0
    ) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.heartbeat = heartbeat
        self.count = 0
        self.timings: dict[str, float] = {}
        self._started = time.monotonic()

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def expect(self, phases: int) -> None:
        """Announce more phases, once it is known which ones will run."""
        self.total += phases

    def note(self, text: str) -> None:
        """A detail line inside the current phase."""
        self._write(f"      {text}")

    @contextmanager
    def phase(self, title: str) -> Iterator[None]:
        """Time one phase; while it runs, report every ``heartbeat`` seconds that it still runs."""
        self.count += 1
        label = f"[{self.count}/{self.total}] {title}"
        self._write(f"{label} ...")
        start = time.monotonic()
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat):
                self._write(f"      still working on {title} ({time.monotonic() - start:.0f}s)")

        ticker = threading.Thread(target=beat, daemon=True)
        ticker.start()
        try:
            yield
        except BaseException:
            self._write(f"{label} FAILED after {time.monotonic() - start:.1f}s")
            raise
        finally:
            done.set()
            ticker.join()
        elapsed = time.monotonic() - start
        self.timings[title] = elapsed
        self._write(f"{label} done in {elapsed:.1f}s")

    def summary(self) -> None:
        """The total, once every phase has finished."""
        self._write(f"built in {time.monotonic() - self._started:.1f}s")
