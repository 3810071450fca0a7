"""pytest hooks of pytest-kindcluster; the fixtures live in :mod:`pytest_kindcluster.fixtures`."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from pytest_kindcluster import fixtures
from pytest_kindcluster.coordination import XdistController, run_id_for, worker_input
from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.reporting import PROGRESS, TerminalProgress
from pytest_kindcluster.settings import FAILED_KIND_TESTS, SETTINGS, Settings, add_options

# Tests that use any of these are "kind" tests: marked, and counted for retain=on-failure.
KIND_FIXTURES = frozenset({"kind_cluster", "kind_client", "kind_namespace"})


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--kind-*`` options and their ``kind_*`` ini twins."""
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and fixtures, resolve the settings (bad ones stop the run here)."""
    config.addinivalue_line(
        "markers", "kind: the test uses a kind cluster (added automatically; deselect with -m)"
    )
    try:
        config.stash[SETTINGS] = Settings.from_config(config, run_id=run_id_for(config))
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[PROGRESS] = TerminalProgress(config)
    config.stash[FAILED_KIND_TESTS] = 0
    config.pluginmanager.register(fixtures, "kindcluster-fixtures")
    distributing = getattr(config.option, "dist", "no") != "no"
    if distributing and worker_input(config) is None:
        # The xdist controller: hooks that only make sense there (DeferPlugin pattern).
        config.pluginmanager.register(XdistController(config), "kindcluster-xdist")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The node image and every setting, each with its source."""
    return config.stash[SETTINGS].header_lines()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use a kind fixture, so ``-m "not kind"`` skips the slow ones."""
    for item in items:
        if KIND_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("kind")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Count failed kind tests, for ``--kind-retain=on-failure`` and the log export."""
    report = yield
    if report.failed and KIND_FIXTURES & set(getattr(item, "fixturenames", ())):
        item.config.stash[FAILED_KIND_TESTS] += 1
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Each cluster's phases, time to ready, and what became of it."""
    progress = terminalreporter.config.stash.get(PROGRESS, None)
    if progress is None or not progress.reports:
        return
    terminalreporter.section("kind clusters")
    for report in progress.reports.values():
        for line in report.lines():
            terminalreporter.write_line(line)
