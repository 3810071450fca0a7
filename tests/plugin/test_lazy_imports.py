"""Sessions without a kind test do not pay for the plugin: no docker, no kubernetes imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_kindcluster

REPORT = """
import sys

def pytest_unconfigure(config):
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"docker", "kubernetes"})
    print("heavy modules:", heavy or "none")
"""


@pytest.mark.parametrize(
    "args",
    [(), ("--kind-workers=1", "--kind-retain=always", "--kind-timeout=60"), ("-m", "not kind")],
    ids=["plain", "kind-options", "kind-tests-deselected"],
)
def test_a_session_without_kind_tests_imports_neither_docker_nor_kubernetes(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    deselecting = args[:1] == ("-m",)
    pytester.makeconftest(REPORT)
    pytester.makepyfile(
        test_plain="def test_plain(): pass\n",
        test_kind="def test_kind(kind_cluster): pass\n" if deselecting else "",
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1, deselected=1 if deselecting else 0)
    result.stdout.fnmatch_lines(["heavy modules: none"])


def test_the_facade_still_offers_kind_cluster_on_first_use() -> None:
    code = (
        "import sys, pytest_kindcluster as p\n"
        "assert 'kubernetes' not in sys.modules\n"
        "from pytest_kindcluster import KindCluster\n"
        "assert KindCluster is p.KindCluster and 'KindCluster' in dir(p)\n"
        "assert 'kubernetes' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = pytest_kindcluster.Nope
