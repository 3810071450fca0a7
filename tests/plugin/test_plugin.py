"""The plugin as users meet it: options, ini twins, the header, markers, failure modes.

These run pytest inside pytest (``pytester``); none of them needs Docker.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from pytest_kindcluster.cluster.existing import ExistingCluster
from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.settings import OPTIONS
from tests.support import FAKE_ENGINE_CONFTEST


def test_help_lists_every_option_and_its_ini_twin(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    for option in OPTIONS:
        result.stdout.fnmatch_lines([f"*{option.flag}*"])
        result.stdout.fnmatch_lines([f"  {option.ini} (string):*"])


def test_header_shows_each_setting_with_its_source(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        kind_workers = 2
        kind_timeout = 120
        kind_logs_dir = kind-logs
        """
    )
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--kind-retain=always", "--kind-name=demo")
    result.stdout.fnmatch_lines(
        [
            f"kindcluster: image={DEFAULT_NODE_IMAGE} (default), name=demo (cli)",
            "kindcluster: workers=2 (ini), retain=always (cli), reuse=False (default), "
            f"timeout=120s (ini), logs_dir={pytester.path / 'kind-logs'} (ini)",
        ]
    )
    assert result.ret == 0


def test_command_line_beats_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nkind_workers = 2\nkind_image = from-ini:1\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--kind-workers=1")
    result.stdout.fnmatch_lines(["*image=from-ini:1 (ini)*", "*workers=1 (cli)*"])


def test_default_name_is_unique_per_run_and_stable_when_reusing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    first = pytester.runpytest().stdout.str()
    second = pytester.runpytest().stdout.str()

    def name(output: str) -> str:
        return output.split("name=", 1)[1].split(" ", 1)[0]

    assert name(first).startswith("pytest-")
    assert name(first) != name(second)
    reused = pytester.runpytest("--kind-reuse")
    reused.stdout.fnmatch_lines(["*name=pytest-kindcluster (default)*", "*reuse=True (cli)*"])


def test_invalid_settings_are_one_usage_error_listing_every_problem(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nkind_timeout = soon\n")
    result = pytester.runpytest(
        "--kind-workers=-1", "--kind-retain=sometimes", "--kind-name=Bad_Name"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*invalid pytest-kindcluster settings:*",
            "*--kind-name='Bad_Name': invalid cluster name*",
            "*--kind-workers='-1': must be 0 or more*",
            "*--kind-retain='sometimes': must be one of never, on-failure, always*",
            "*ini kind_timeout='soon'*",
        ]
    )


def test_kind_tests_are_marked_so_they_can_be_deselected(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_cluster(kind_cluster): raise AssertionError("must not run")
        def test_namespace(kind_namespace): raise AssertionError("must not run")
        def test_plain(): pass
        """
    )
    result = pytester.runpytest("-m", "not kind", "--strict-markers")
    result.assert_outcomes(passed=1, deselected=2)


def test_fixtures_are_documented(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--fixtures")
    # pytest sorts the listing by location text ("fixtures.py:120" before ":48"), so each
    # fixture is matched on its own.
    result.stdout.fnmatch_lines(["kind_cluster* -- *", "*A ready cluster for the session*"])
    result.stdout.fnmatch_lines(["kind_client* -- *"])
    result.stdout.fnmatch_lines(["kind_namespace -- *", "*fresh namespace*"])


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:kindcluster", "--help")
    assert "--kind-image" not in result.stdout.str()


def test_unreachable_docker_is_an_error_not_a_skip(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makepyfile("def test_needs_cluster(kind_cluster): pass")
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*RuntimeUnavailable*DOCKER_HOST=unix:///nonexistent/docker.sock*"]
    )


def test_failed_kind_tests_are_counted_for_retention(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from pytest_kindcluster.settings import FAILED_KIND_TESTS

        @pytest.fixture(scope="session")
        def kind_cluster():
            return object()

        def pytest_sessionfinish(session):
            print("failed kind tests:", session.config.stash[FAILED_KIND_TESTS])
        """
    )
    pytester.makepyfile(
        """
        def test_kind_fails(kind_cluster): assert False
        def test_kind_passes(kind_cluster): pass
        def test_plain_fails(): assert False
        """
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*failed kind tests: 1*"])


def test_terminal_shows_phases_and_time_to_ready(pytester: pytest.Pytester) -> None:
    # A whole session against the in-memory runtime, in a subprocess so the readiness stub
    # cannot leak into this process.
    pytester.makeconftest(
        FAKE_ENGINE_CONFTEST
        + textwrap.dedent(
            """
        def pytest_unconfigure(config):
            print("containers left:", sorted(ENGINE.containers))
        """
        )
    )
    pytester.makepyfile(
        """
        def test_cluster(kind_cluster):
            assert [n.role for n in kind_cluster.nodes] == ["control-plane", "worker"]
        """
    )
    result = pytester.runpytest_subprocess(
        "--kind-name=demo", "--kind-workers=1", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "kind demo: creating cluster: 1 control plane + 1 worker(s), image *",
            "kind demo: preflight *s",
            "kind demo: kubeadm-init *s",
            "kind demo: join *s",
            "kind demo: ready *s",
            "kind demo: ready in *s",
            "*= kind clusters =*",
            "kind demo: preflight *s, network *s, nodes *s*, ready *s",
            "kind demo: ready in *s",
            "kind demo: deleted",
            "containers left: []",
        ]
    )
    assert sys.executable  # the subprocess used this interpreter


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "0", "-1"])
@pytest.mark.parametrize("where", ["cli", "ini"])
def test_a_timeout_that_is_not_finite_and_positive_is_a_usage_error(
    pytester: pytest.Pytester, bad: str, where: str
) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    if where == "ini":
        pytester.makeini(f"[pytest]\nkind_timeout = {bad}\n")
        result = pytester.runpytest()
        named = f"ini kind_timeout='{bad}'"
    else:
        result = pytester.runpytest(f"--kind-timeout={bad}")
        named = f"--kind-timeout='{bad}'"
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*{named}: must be a finite number of seconds greater than 0, not *"]
    )


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0])
def test_the_library_refuses_such_timeouts_too(bad: float, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="timeout must be a finite number of seconds"):
        KindCluster("demo", timeout=bad)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    with pytest.raises(ConfigError, match="timeout must be a finite number of seconds"):
        ExistingCluster(kubeconfig, timeout=bad)
