"""``--junitxml``: each cluster's phase timings and time to ready are properties of the suite.

CI servers keep JUnit reports across runs, so a cluster that gets slower shows up there. The
sessions run against the in-memory runtime, in a subprocess so the readiness stub cannot leak.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.support import FAKE_ENGINE_CONFTEST


def suite_properties(pytester: pytest.Pytester, *args: str) -> list[tuple[str, str]]:
    pytester.makeconftest(FAKE_ENGINE_CONFTEST)
    result = pytester.runpytest_subprocess("--junitxml=report.xml", "-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=2)
    suite = ET.parse(pytester.path / "report.xml").getroot().find("testsuite")
    assert suite is not None
    return [(p.get("name", ""), p.get("value", "")) for p in suite.iterfind("properties/property")]


def test_phases_and_time_to_ready_are_suite_properties(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_one(kind_cluster): pass
        def test_two(kind_cluster): pass
        """
    )
    props = suite_properties(pytester, "--kind-name=demo", "--kind-workers=1")
    names = [name for name, _ in props]
    assert names == [
        "kind.demo.phase.preflight",
        "kind.demo.phase.network",
        "kind.demo.phase.nodes",
        "kind.demo.phase.kubeadm-config",
        "kind.demo.phase.kubeadm-init",
        "kind.demo.phase.join",
        "kind.demo.phase.kubeconfig",
        "kind.demo.phase.ready",
        "kind.demo.time_to_ready",
    ]
    values = dict(props)
    assert all(float(v) >= 0 for v in values.values())
    phases = sum(float(v) for n, v in props if ".phase." in n)
    assert float(values["kind.demo.time_to_ready"]) >= phases - 0.1 * len(props)


def test_each_marked_cluster_has_its_own_properties(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_default="def test_default(kind_cluster): pass",
        test_marked="""
        import pytest
        pytestmark = pytest.mark.kind_cluster(name="other")
        def test_marked(kind_cluster): assert kind_cluster.name == "other"
        """,
    )
    names = [name for name, _ in suite_properties(pytester, "--kind-name=main")]
    assert names.count("kind.main.time_to_ready") == 1
    assert names.count("kind.other.time_to_ready") == 1
    assert "kind.other.phase.kubeadm-init" in names


def test_no_cluster_no_properties(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass")
    assert suite_properties(pytester) == []
