"""--kind-kubeconfig and --kind-context as users meet them, without any cluster or Docker."""

from __future__ import annotations

import pytest

from tests.support import EKS, GKE, cloud_kubeconfig


def test_context_without_kubeconfig_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(f"--kind-context={GKE}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kind-context picks a context of --kind-kubeconfig*"])


def test_an_unknown_context_is_a_usage_error_listing_the_contexts(
    pytester: pytest.Pytester,
) -> None:
    path = cloud_kubeconfig(pytester.path / "kubeconfig", current=EKS)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest(f"--kind-kubeconfig={path}", "--kind-context=kind-typo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*has no context 'kind-typo'; pick one with --kind-context (its contexts: {GKE}, {EKS})"]
    )


def test_the_ini_twin_and_the_header(pytester: pytest.Pytester) -> None:
    path = cloud_kubeconfig(pytester.path / "kubeconfig", current=EKS)
    pytester.makeini(f"[pytest]\nkind_kubeconfig = kubeconfig\nkind_context = {GKE}\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [f"*kubeconfig={path} (existing cluster) (ini), context={GKE} (ini)"]
    )
    assert result.ret == 0


def test_an_unreachable_cloud_cluster_is_one_error_naming_the_server_and_leaves_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No Docker either: an existing cluster does not need one.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    tmp = pytester.path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    home = pytester.path / "home"
    home.mkdir()
    path = cloud_kubeconfig(home / "config", current=EKS)
    pytester.makepyfile(
        """
        def test_one(kind_namespace): pass
        def test_two(kind_cluster): pass
        """
    )
    result = pytester.runpytest_subprocess(
        f"--kind-kubeconfig={path}", f"--kind-context={GKE}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*ClusterUnreachable: cannot reach the apiserver at https://127.0.0.1:1: *refused*"]
    )
    output = result.stdout.str()
    assert "invalid cluster name" not in output
    assert "urllib3.exceptions.MaxRetryError:" not in output  # not urllib3's chain of retries
    assert sorted(p.name for p in home.iterdir()) == ["config"]
    assert list(tmp.glob("kindcluster-*")) == []
