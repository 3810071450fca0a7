"""Fan-out helper: run one function over several items at once, and report every failure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_all(fn: Callable[[T], R], items: Sequence[T], *, what: str) -> list[R]:
    """Call ``fn`` on every item concurrently and return the results in order.

    Every item runs to completion even when some fail (as kind's AggregateConcurrent does), so a
    failure on one node never leaves another half-done; all failures come back together in one
    ExceptionGroup named by ``what``. One item runs inline: a thread would only hide its stack.
    """
    if len(items) == 1:
        return [fn(items[0])]
    with ThreadPoolExecutor(max_workers=max(len(items), 1), thread_name_prefix="kind") as pool:
        futures = [pool.submit(fn, item) for item in items]
        failures = [exc for f in futures if (exc := f.exception()) is not None]
    errors: list[Exception] = []
    for exc in failures:
        if not isinstance(exc, Exception):
            raise exc  # KeyboardInterrupt and friends are not ours to collect
        errors.append(exc)
    if errors:
        raise ExceptionGroup(what, errors)
    return [f.result() for f in futures]
