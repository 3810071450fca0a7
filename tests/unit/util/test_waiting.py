"""The one wait/retry helper."""

from __future__ import annotations

import itertools

import pytest

from pytest_kindcluster.errors import WaitExpired
from pytest_kindcluster.util.waiting import wait_until


def test_returns_the_first_non_none_value() -> None:
    values = iter([None, None, "ready"])
    assert wait_until(lambda: next(values), what="x", timeout=5, interval=0) == "ready"


def test_zero_and_false_are_answers_not_not_yet() -> None:
    assert wait_until(lambda: 0, what="x", timeout=1, interval=0) == 0


def test_retry_on_exceptions_then_succeed() -> None:
    calls = itertools.count()

    def probe() -> str:
        if next(calls) < 2:
            raise ConnectionError("refused")
        return "up"

    assert wait_until(probe, what="x", timeout=5, interval=0, retry_on=(ConnectionError,)) == "up"


def test_unlisted_exceptions_propagate_at_once() -> None:
    calls = itertools.count()

    def probe() -> None:
        next(calls)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        wait_until(probe, what="x", timeout=5, interval=0, retry_on=(ConnectionError,))
    assert next(calls) == 1


def test_attempts_budget_reports_the_last_exception() -> None:
    def probe() -> None:
        raise ConnectionError("still refused")

    with pytest.raises(WaitExpired) as info:
        wait_until(probe, what="the thing", attempts=3, interval=0, retry_on=(ConnectionError,))
    assert isinstance(info.value, TimeoutError)
    assert "the thing" in str(info.value)
    assert "ConnectionError: still refused" in str(info.value)
    assert "3 attempts" in str(info.value)


def test_timeout_budget() -> None:
    with pytest.raises(WaitExpired, match="not ready yet"):
        wait_until(lambda: None, what="never", timeout=0.2, interval=0.05)


def test_needs_a_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        wait_until(lambda: 1, what="x")
