"""The one place that waits or retries, built on tenacity.

Every poll loop in the package (node boot, readiness, network creation retries) goes through
:func:`wait_until`, so timeouts behave the same everywhere and carry the last thing observed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    stop_never,
    wait_fixed,
)
from tenacity.stop import stop_base

from pytest_kindcluster.errors import WaitExpired

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None],
    *,
    what: str,
    timeout: float | None = None,
    attempts: int | None = None,
    interval: float = 0.5,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``probe`` until it returns something other than ``None``, and return that.

    ``retry_on`` lists exceptions that mean "not yet" rather than "failed". Give ``timeout``
    (seconds), ``attempts``, or both; whichever runs out first stops the wait with
    :class:`WaitExpired`, whose ``last`` is the last exception or "not ready yet".
    """
    if timeout is None and attempts is None:
        raise ValueError("wait_until needs a timeout or an attempts budget")
    stop: stop_base = stop_after_delay(timeout) if timeout is not None else stop_never
    if attempts is not None:
        stop = stop | stop_after_attempt(attempts)
    retrying = Retrying(
        stop=stop,
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda value: value is None) | retry_if_exception_type(retry_on),
    )
    try:
        result: T | None = retrying(probe)
    except RetryError as exc:
        outcome = exc.last_attempt
        error = outcome.exception()
        last = f"{type(error).__name__}: {error}" if error is not None else "not ready yet"
        budget = f"{timeout:.0f}s" if timeout is not None else f"{attempts} attempts"
        raise WaitExpired(what, budget, last) from error
    assert result is not None  # tenacity only returns once the result predicate is satisfied
    return result
