"""pytest hooks of pytest-kindcluster; the fixtures live in :mod:`pytest_kindcluster.fixtures`."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from pytest_kindcluster import fixtures
from pytest_kindcluster.cluster.reaper import sweep
from pytest_kindcluster.coordination import (
    RUN_ID,
    XDIST_CONTROLLER,
    XdistController,
    note_kind_tests,
    run_id_for,
    worker_input,
)
from pytest_kindcluster.errors import ConfigError, KindClusterError
from pytest_kindcluster.markers import (
    MARKED_REQUESTS,
    MARKER_HELP,
    ClusterRegistry,
    cluster_request,
)
from pytest_kindcluster.overrides import session_runtime, session_settings
from pytest_kindcluster.reporting import PROGRESS, TerminalProgress, shorten_failure
from pytest_kindcluster.settings import FAILED_KIND_TESTS, SETTINGS, Settings, add_options
from pytest_kindcluster.signals import TERMINATION, TerminationHandler
from pytest_kindcluster.util.duration import parse_duration

# --kind-prune-older-than: also prune clusters whose owner cannot be told, once this old.
PRUNE_OLDER_THAN = pytest.StashKey[timedelta | None]()

# Tests that use any of these are "kind" tests: marked, and counted for retain=on-failure.
KIND_FIXTURES = frozenset({"kind_cluster", "kind_client", "kind_namespace"})


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--kind-*`` options and their ``kind_*`` ini twins."""
    add_options(parser)
    # Per-run intent with no ini twin: a standing age limit would sweep clusters whose owner
    # may be alive in another container.
    group = parser.getgroup("kindcluster")
    group.addoption(
        "--kind-prune",
        action="store_true",
        default=False,
        help="first delete the stale clusters this plugin made (their pytest process is proven "
        "gone; retained clusters are never pruned), then run the tests",
    )
    group.addoption(
        "--kind-prune-older-than",
        metavar="AGE",
        default=None,
        help="with --kind-prune: also delete non-retained clusters older than AGE (30m, 6h, 2d) "
        "whose owner cannot be checked from here (another PID namespace or host, hidden /proc)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and fixtures, resolve the settings (bad ones stop the run here)."""
    config.addinivalue_line(
        "markers", "kind: the test uses a kind cluster (added automatically; deselect with -m)"
    )
    config.addinivalue_line("markers", MARKER_HELP)
    config.stash[MARKED_REQUESTS] = ClusterRegistry()
    config.stash[RUN_ID] = run_id_for(config)
    try:
        config.stash[SETTINGS] = Settings.from_config(config, run_id=config.stash[RUN_ID])
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.stash[PRUNE_OLDER_THAN] = _prune_older_than(config)
    config.stash[PROGRESS] = TerminalProgress(config)
    config.stash[FAILED_KIND_TESTS] = 0
    config.pluginmanager.register(fixtures, "kindcluster-fixtures")
    # Installed by the fixtures only while a cluster is owned (see signals.py). Released last:
    # cleanups run in reverse, so after the marked clusters' (registered later) are deleted.
    config.stash[TERMINATION] = TerminationHandler(config.stash[PROGRESS].alert)
    config.add_cleanup(config.stash[TERMINATION].release_all)
    distributing = getattr(config.option, "dist", "no") != "no"
    if distributing and worker_input(config) is None:
        # The xdist controller: hooks that only make sense there (DeferPlugin pattern).
        config.pluginmanager.register(XdistController(config), XDIST_CONTROLLER)


def _prune_older_than(config: pytest.Config) -> timedelta | None:
    text = config.getoption("kind_prune_older_than")
    if text is None:
        return None
    if not config.getoption("kind_prune"):
        raise pytest.UsageError(
            f"--kind-prune-older-than={text} only applies with --kind-prune; add --kind-prune"
        )
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--kind-prune-older-than={text!r}: {exc}") from exc


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """``--kind-prune``: sweep before the first test (controller only).

    After collection, so that a ``kind_runtime`` or ``kind_settings`` override in any conftest
    is loaded (see overrides.py).
    """
    config = session.config
    if not config.getoption("kind_prune") or worker_input(config) is not None:
        return
    if config.option.collectonly:
        return
    try:
        settings = session_settings(config)
        # The cluster this run is about to reuse is not stale, whoever created it.
        spare = {settings.name} if settings.reuse else set()
        resources = session_runtime(config).resources()
        report = sweep(resources, spare=spare, older_than=config.stash[PRUNE_OLDER_THAN])
    except KindClusterError as exc:
        raise pytest.UsageError(f"--kind-prune: {exc}") from exc
    terminal: Any = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        for line in report.lines() or ["no stale clusters"]:
            terminal.write_line(f"kindcluster prune: {line}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The node image and every setting, each with its source."""
    return config.stash[SETTINGS].header_lines()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A ``kind_cluster`` marker becomes an indirect parameter of the ``kind_cluster`` fixture.

    The fixture keeps its session scope (as in pytest-kind, so session fixtures may use it),
    and pytest groups the tests of each marked cluster together.
    """
    if "kind_cluster" not in metafunc.fixturenames:
        return
    settings = metafunc.config.stash[SETTINGS]
    try:
        request = cluster_request(metafunc.definition, settings.name)
        if request is None:
            return
        request = metafunc.config.stash[MARKED_REQUESTS].register(request)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from exc
    metafunc.parametrize(
        "kind_cluster", [request], indirect=True, ids=[request.name], scope="session"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use a kind fixture, so ``-m "not kind"`` skips the slow ones."""
    for item in items:
        if KIND_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("kind")


# tryfirst: before xdist's own hook reports the collection to the controller.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Under xdist, a worker with kind tests lets the controller know (it then owns clusters)."""
    if any(KIND_FIXTURES & set(getattr(item, "fixturenames", ())) for item in session.items):
        note_kind_tests(session.config)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Count failed kind tests (``--kind-retain=on-failure``); our errors in fixtures kept short."""
    report = yield
    shorten_failure(item.config, call, report)
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


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """Keep each cluster's time to ready for the JUnit report, however the fixture made it."""
    cluster = yield
    if fixturedef.argname != "kind_cluster":
        return cluster
    # Imported only once a cluster exists: sessions without one never load the Kubernetes client.
    from pytest_kindcluster.cluster.base import ClusterBase  # noqa: PLC0415

    if isinstance(cluster, ClusterBase) and cluster.ready_seconds is not None:
        report = request.config.stash[PROGRESS].report_for(cluster.name)
        report.ready_seconds = cluster.ready_seconds
    return cluster


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Before ``--junitxml`` writes its file: each cluster's phases and time to ready as
    properties of the test suite."""
    config = session.config
    xml = junit_report(config)
    progress = config.stash.get(PROGRESS, None)
    if xml is None or progress is None:
        return
    controller = config.pluginmanager.get_plugin(XDIST_CONTROLLER)
    if controller is not None:
        controller.load_reports()  # the clusters the workers made
    for report in progress.reports.values():
        for name, value in report.junit_properties():
            xml.add_global_property(name, value)


def junit_report(config: pytest.Config) -> Any:
    """``--junitxml``'s report object, or None without that option.

    pytest registers it as a plugin; ``record_testsuite_property`` writes to the same object with
    ``add_global_property``. That fixture cannot be used here: fixtures do not exist on the xdist
    controller, which writes the report. Found by its method rather than imported from
    ``_pytest``, whose modules are not a public API.
    """
    return next(
        (p for p in config.pluginmanager.get_plugins() if hasattr(p, "add_global_property")),
        None,
    )
