"""Durations typed on a command line (util/duration.py): prune ages and snapshot ages."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pytest_kindcluster.util.duration import parse_duration


def test_number_unit_parts_add_up() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration(" 1H30m ") == timedelta(hours=1, minutes=30)
    assert parse_duration("0.5d") == timedelta(hours=12)
    assert parse_duration("2w") == timedelta(days=14)


@pytest.mark.parametrize("text", ["soon", "-1d", "3", "1h 30m", "5x", ""])
def test_anything_else_names_the_fix(text: str) -> None:
    with pytest.raises(ValueError, match="write a number and a unit"):
        parse_duration(text)


def test_zero_only_where_allowed_and_bare_numbers_only_with_a_unit() -> None:
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration("0s")
    assert parse_duration("0s", zero_ok=True) == timedelta()
    assert parse_duration("3", bare_unit="d") == timedelta(days=3)
    assert parse_duration("3h", bare_unit="d") == timedelta(hours=3)
