"""Durations as people type them on a command line: ``30m``, ``6h``, ``2d``, ``1h30m``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_NUMBER = r"\d+(?:\.\d+)?"
_PART = re.compile(rf"({_NUMBER})([smhdw])")


def parse_duration(text: str, *, zero_ok: bool = False, bare_unit: str | None = None) -> timedelta:
    """A duration of number-unit parts (s, m, h, d, w); ValueError naming the fix if not.

    It must be longer than zero unless ``zero_ok``; a bare number counts in ``bare_unit`` where
    one is given (and is refused otherwise).
    """
    compact = text.strip().lower()
    if bare_unit is not None and re.fullmatch(_NUMBER, compact):
        compact += bare_unit
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError("not a duration; write a number and a unit: 30m, 6h, 2d or 1h30m")
    value = sum((timedelta(**{_UNITS[unit]: float(n)}) for n, unit in parts), timedelta())
    if value <= timedelta() and not zero_ok:
        raise ValueError("must be longer than zero")
    return value
