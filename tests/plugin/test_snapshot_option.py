"""``--kind-snapshot`` as users meet it: the option, its ini twin, refusals, the terminal lines.

Against the in-memory engine; tests/integration/test_snapshots.py runs it for real.
"""

from __future__ import annotations

import textwrap

import pytest

from tests.support import FAKE_ENGINE_CONFTEST

HA = """\
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: control-plane
- role: control-plane
"""


def test_off_by_default_and_shown_in_the_header_when_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    assert "snapshot" not in pytester.runpytest().stdout.str()
    pytester.makeini("[pytest]\nkind_snapshot = true\n")
    pytester.runpytest().stdout.fnmatch_lines(["kindcluster: workers=*, snapshot=True (ini)"])


def test_ha_and_existing_clusters_are_refused_up_front(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    (pytester.path / "ha.yaml").write_text(HA)
    result = pytester.runpytest("--kind-snapshot", "--kind-config=ha.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*snapshots support one control plane, this config has 3*"])
    assert "kind issue 1689" in result.stderr.str()
    (pytester.path / "kubeconfig").write_text("{}")
    result = pytester.runpytest("--kind-snapshot", "--kind-kubeconfig=kubeconfig")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kind-snapshot cannot apply*"])


def test_a_session_captures_then_boots_and_says_so(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        FAKE_ENGINE_CONFTEST
        + textwrap.dedent(
            """
        def pytest_unconfigure(config):
            print("containers left:", sorted(ENGINE.containers))
            print("networks left:", sorted(ENGINE.networks))
            print("snapshot images:", len(ENGINE.snapshots().stored))
        """
        )
    )
    pytester.makepyfile(
        """
        def test_cluster(kind_cluster):
            (node,) = kind_cluster.nodes
            assert node.name == "demo-control-plane"
            assert node.details().image.startswith("pytest-kindcluster/snapshot:")
        """
    )
    result = pytester.runpytest_subprocess(
        "--kind-name=demo", "--kind-snapshot", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "kind demo: created cold: no snapshot for these inputs; capturing snapshot * from *",
            "kind kc-snap-*: kubeadm-init *s",
            "kind kc-snap-*: capture *s",
            "kind demo: snapshot * captured in *s (* MB)",
            "kind demo: nodes+rewrite *s",
            "kind demo: booted from snapshot * (created *s ago)",
            "kind demo: ready in *s",
            "*= kind clusters =*",
            "kind demo: booted from snapshot * (created *s ago)",
            "kind demo: deleted",
            "containers left: []",
            "networks left: ['kind']",
            "snapshot images: 1",
        ]
    )


def test_a_marked_cluster_boots_from_a_snapshot_of_its_own(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        FAKE_ENGINE_CONFTEST
        + textwrap.dedent(
            """
        def pytest_unconfigure(config):
            nodes = [ref.split(":")[1].split("-", 1)[1] for ref in ENGINE.snapshots().stored]
            print("snapshot images:", sorted(nodes))
        """
        )
    )
    (pytester.path / "workers.yaml").write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n"
        "- role: control-plane\n- role: worker\n"
    )
    pytester.makepyfile(
        test_default="def test_default(kind_cluster):\n    assert len(kind_cluster.nodes) == 1\n",
        test_marked="import pytest\n"
        "pytestmark = pytest.mark.kind_cluster(config='workers.yaml', name='marked')\n"
        "def test_marked(kind_cluster):\n"
        "    assert [n.name for n in kind_cluster.nodes] == "
        "['marked-control-plane', 'marked-worker']\n",
    )
    result = pytester.runpytest_subprocess(
        "--kind-name=demo", "--kind-snapshot", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    output = result.stdout.str()
    assert output.count("booted from snapshot") >= 2
    result.stdout.fnmatch_lines(
        ["kind marked: booted from snapshot * (created *s ago)", "kind marked: deleted"]
    )
    # Two inputs, two snapshots: one of one node, one of a control plane and a worker.
    # ("?" for the list's brackets, which fnmatch reads as a character class.)
    result.stdout.fnmatch_lines(["snapshot images: ?'control-plane', 'control-plane', 'worker'?"])
