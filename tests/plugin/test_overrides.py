"""``kind_settings`` and ``kind_runtime`` overrides resolved outside tests (overrides.py)."""

from __future__ import annotations

import pytest

HOOK = """
def pytest_sessionfinish(session):
    from pytest_kindcluster.overrides import session_runtime, session_settings

    runtime = session_runtime(session.config)
    assert session_runtime(session.config) is runtime  # resolved once
    print("resolved:", runtime.label, session_settings(session.config).retain)
"""

ROOT = """
import os
import pytest
from pytest_kindcluster.runtime.fake import FakeRuntime

@pytest.fixture(scope="session")
def engine_label():
    return "root"

@pytest.fixture(scope="session", name="kind_runtime")
def my_runtime(pytestconfig, engine_label):
    runtime = FakeRuntime()
    runtime.label = engine_label
    yield runtime
    with open(os.path.join(str(pytestconfig.rootpath), "teardown.txt"), "w") as out:
        out.write("finalized " + engine_label)
"""


def test_a_yield_override_with_its_own_fixtures_is_resolved_and_finalized(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(ROOT + HOOK)
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("-s", "--kind-retain=always")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*resolved: root always"])
    assert (pytester.path / "teardown.txt").read_text() == "finalized root"


def test_the_deepest_loaded_conftest_wins(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(ROOT + HOOK)
    sub = pytester.mkpydir("sub")
    (sub / "conftest.py").write_text(
        "import pytest\n@pytest.fixture(scope='session')\ndef engine_label():\n    return 'deep'\n"
    )
    (sub / "test_it.py").write_text("def test_plain(): pass\n")
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*resolved: deep never"])


def test_an_override_needing_a_test_only_fixture_is_a_clear_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        "import pytest\n"
        "@pytest.fixture(scope='session')\n"
        "def kind_runtime(request):\n"
        "    raise AssertionError('must not be called')\n"
    )
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest("--kind-prune")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: --kind-prune: fixture 'request' (wanted by 'kind_runtime') is not available "
            "outside a test (on the xdist controller and for --kind-prune); give the override "
            "only pytestconfig and other session fixtures defined in a conftest.py"
        ]
    )
