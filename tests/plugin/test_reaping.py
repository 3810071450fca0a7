"""Reaping, ``--kind-prune`` and conftest overrides as a pytest session shows them.

Each session runs in a subprocess against an in-memory engine that a conftest.py provides by
overriding ``kind_runtime``, preloaded with other runs' clusters. ``DOCKER_HOST`` points
nowhere, so any path that ignored the override and reached for Docker would fail the run.
"""

from __future__ import annotations

import re

import pytest

CONFTEST = """
import dataclasses, json, os, subprocess, sys
from datetime import UTC, datetime, timedelta

import pytest

from pytest_kindcluster.cluster.ownership import CREATED_FORMAT, Owner, cluster_labels
from pytest_kindcluster.contract import CLUSTER_LABEL, CREATED_LABEL
from pytest_kindcluster.errors import EngineError
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.runtime.fake import FakeRuntime
from pytest_kindcluster.settings import SETTINGS

readiness.wait_ready = lambda api, **kwargs: {}
RECORD = os.path.join(os.path.dirname(__file__), "calls.txt")


def exited_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


class Engine(FakeRuntime):
    '''Records which process asked what; removing a "stuck-" container fails.'''

    def _record(self, what):
        with open(RECORD, "a") as out:
            out.write(f"{os.getpid()} {what}\\n")

    def resources(self):
        self._record("resources")
        return super().resources()

    def list_nodes(self, cluster):
        self._record(f"list_nodes {cluster}")
        return super().list_nodes(cluster)

    def remove(self, resource):
        if resource.name.startswith("stuck-"):
            raise EngineError(f"remove container {resource.name}", "device or resource busy")
        return super().remove(resource)

    def leftover(self, name, owner, retain="never", hours_old=0):
        created = datetime.now(UTC) - timedelta(hours=hours_old)
        self.add_foreign_node(f"{name}-control-plane", name)
        self.containers[f"{name}-control-plane"].labels.update(
            {
                **cluster_labels(owner, "old-run", retain),
                CLUSTER_LABEL: name,
                CREATED_LABEL: created.strftime(CREATED_FORMAT),
            }
        )


ENGINE = Engine()
DEAD = Owner.of(exited_pid())
NEXT_DOOR = dataclasses.replace(DEAD, pid_ns="4026532001")  # a container with its own pids
ENGINE.leftover("orphan", DEAD)
ENGINE.leftover("kept", DEAD, retain="always")
ENGINE.leftover("reused", DEAD, retain="reuse", hours_old=100)
ENGINE.leftover("next-door", NEXT_DOOR, hours_old=1)
ENGINE.leftover("next-door-old", NEXT_DOOR, hours_old=10)


@pytest.fixture(scope="session")
def kind_runtime():
    return ENGINE


def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        with open(RECORD, "a") as out:
            out.write(f"{os.getpid()} controller\\n")


def pytest_unconfigure(config):
    print("containers left:", sorted(ENGINE.containers))
"""


@pytest.fixture
def session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makeconftest(CONFTEST)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *args)


def left(result: pytest.RunResult) -> list[str]:
    match = re.search(r"containers left: (\[.*\])", result.stdout.str())
    assert match, result.stdout.str()
    return sorted(re.findall(r"'([^']+)-control-plane'", match.group(1)))


def test_prune_removes_proven_orphans_only_and_names_the_rest(session: pytest.Pytester) -> None:
    session.makepyfile("def test_plain(): pass")
    result = run(session, "--kind-prune")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "kindcluster prune: removed stale cluster orphan (1 container(s), age 0m, owner "
            "pid * on * is gone)",
            "kindcluster prune: left alone cluster next-door (1 container(s), age 1h00m, owner "
            "pid * on *: another PID namespace): cannot tell whether its owner still runs; if "
            "it is abandoned, remove it with `python -m pytest_kindcluster cluster delete "
            "next-door`",
            "kindcluster prune: left alone cluster next-door-old (*",
        ]
    )
    # Retained clusters are kept: --kind-prune never touches them, however old.
    assert left(result) == ["kept", "next-door", "next-door-old", "reused"]


def test_prune_older_than_also_takes_old_unknown_owners_never_retained(
    session: pytest.Pytester,
) -> None:
    session.makepyfile("def test_plain(): pass")
    result = run(session, "--kind-prune", "--kind-prune-older-than", "6h")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "kindcluster prune: removed stale cluster next-door-old (1 container(s), age "
            "10h00m, *another PID namespace)",
            "kindcluster prune: removed stale cluster orphan (*",
            "kindcluster prune: left alone cluster next-door (*",
        ]
    )
    assert left(result) == ["kept", "next-door", "reused"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind-prune-older-than", "6h"], "*--kind-prune-older-than=6h only applies with "
         "--kind-prune; add --kind-prune*"),
        (["--kind-prune", "--kind-prune-older-than", "6 hours"], "*--kind-prune-older-than="
         "'6 hours': not a duration; write a number and a unit: 30m, 6h, 2d or 1h30m*"),
        (["--kind-prune", "--kind-prune-older-than", "0m"], "*must be longer than zero*"),
    ],
)  # fmt: skip
def test_bad_prune_ages_are_usage_errors(
    session: pytest.Pytester, args: list[str], message: str
) -> None:
    session.makepyfile("def test_plain(): pass")
    result = run(session, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "kindcluster prune" not in result.stdout.str()


def test_help_says_prune_spares_retained_clusters(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = " ".join(result.stdout.str().split())
    assert "retained clusters are never pruned" in text
    assert "--kind-prune-older-than=AGE" in text
    assert "with --kind-prune: also delete non-retained clusters older than AGE" in text


def test_create_leaves_unknown_owners_alone_and_says_so(session: pytest.Pytester) -> None:
    session.makepyfile("def test_cluster(kind_cluster): pass")
    result = run(session, "--kind-name=demo")
    result.assert_outcomes(passed=1)
    lines = [
        "kind demo: removed stale cluster orphan (*",
        "kind demo: left alone cluster next-door (*another PID namespace): cannot tell whether "
        "its owner still runs; if it is abandoned, remove it with `python -m pytest_kindcluster "
        "cluster delete next-door`",
    ]
    result.stdout.fnmatch_lines([*lines, "*= kind clusters =*", *lines, "kind demo: deleted"])
    assert left(result) == ["kept", "next-door", "next-door-old", "reused"]


def test_a_stuck_leftover_is_a_warning_in_the_summary_not_a_failure(
    session: pytest.Pytester,
) -> None:
    session.makeconftest(CONFTEST + "\nENGINE.leftover('stuck-one', DEAD)\n")
    session.makepyfile("def test_cluster(kind_cluster): pass")
    result = run(session, "--kind-name=demo")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= kind clusters =*",
            "kind demo: warning: could not remove container stuck-one-control-plane of stale "
            "cluster stuck-one: container engine failed to remove container "
            "stuck-one-control-plane: device or resource busy",
            "kind demo: deleted",
        ]
    )
    assert "stuck-one" in left(result)


def controller_calls(pytester: pytest.Pytester) -> list[str]:
    lines = (pytester.path / "calls.txt").read_text().splitlines()
    controller = next(line.split()[0] for line in lines if line.endswith(" controller"))
    return [line.split(" ", 1)[1] for line in lines if line.split()[0] == controller]


def test_xdist_controller_uses_the_overridden_runtime_and_settings(
    session: pytest.Pytester,
) -> None:
    session.makeconftest(
        CONFTEST
        + """
@pytest.fixture(scope="session")
def kind_settings(pytestconfig):
    return dataclasses.replace(pytestconfig.stash[SETTINGS], retain="always")
"""
    )
    session.makepyfile("def test_a(kind_cluster): pass\ndef test_b(kind_cluster): pass")
    result = run(session, "-n", "2", "--kind-name=demo")
    result.assert_outcomes(passed=2)
    # The worker's kind_settings said retain=always; the controller's own settings did not.
    result.stdout.fnmatch_lines(["*= kind clusters =*", "kind demo: kept (retain=always)*"])
    calls = controller_calls(session)
    assert "list_nodes demo" in calls  # it adopted the cluster through the override
    assert "resources" in calls  # and swept the run's leftovers there too


def test_prune_on_the_xdist_controller_uses_the_override(session: pytest.Pytester) -> None:
    session.makepyfile("def test_plain(): pass")
    result = run(session, "-n", "2", "--kind-prune")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["kindcluster prune: removed stale cluster orphan (*"])
    assert "resources" in controller_calls(session)


def test_xdist_controller_leaves_a_cluster_of_a_runtime_it_cannot_see(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The override is in a conftest deeper than the controller loads: it must not guess.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    deep = pytester.mkpydir("suite") / "deeper"
    deep.mkdir()
    (deep / "conftest.py").write_text(CONFTEST)
    (deep / "test_it.py").write_text("def test_a(kind_cluster): pass\n")
    result = run(pytester, "-n", "1", "--kind-name=demo")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= kind clusters =*",
            "kind demo: left as it is: *; remove it with "
            "`python -m pytest_kindcluster cluster delete demo`",
        ]
    )
    assert "kind demo: deleted" not in result.stdout.str()


def test_xdist_controller_leaves_a_cluster_made_through_another_runtime_class(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The controller sees the rootdir's override, the workers use a deeper one.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    pytester.makeconftest(
        "import pytest\n"
        "from pytest_kindcluster.runtime.fake import FakeRuntime\n"
        "@pytest.fixture(scope='session')\n"
        "def kind_runtime():\n"
        "    return FakeRuntime()\n"
    )
    deep = pytester.mkpydir("suite") / "deeper"
    deep.mkdir()
    (deep / "conftest.py").write_text(CONFTEST)
    (deep / "test_it.py").write_text("def test_a(kind_cluster): pass\n")
    result = run(pytester, "-n", "1", "--kind-name=demo")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= kind clusters =*",
            "kind demo: left as it is: made through *conftest.Engine, but the xdist "
            "controller's kind_runtime is pytest_kindcluster.runtime.fake.FakeRuntime (override "
            "kind_runtime in a conftest.py pytest loads at start-up, e.g. the rootdir's); "
            "remove it with `python -m pytest_kindcluster cluster delete demo`",
        ]
    )
