"""Fixtures shared by the lifecycle tests that run create flows against the in-memory engine."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_kindcluster.kube import readiness


@pytest.fixture
def ready_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Readiness taken as given; each wait's keyword arguments, in order."""
    calls: list[dict[str, Any]] = []

    def fake_wait_ready(api: Any, **kwargs: Any) -> dict[str, float]:
        calls.append(kwargs)
        return {}

    monkeypatch.setattr(readiness, "wait_ready", fake_wait_ready)
    return calls
