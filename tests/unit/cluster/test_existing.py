"""Existing-cluster mode without a cluster: names, the private directory, kubectl, failures."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kindcluster.cluster import existing
from pytest_kindcluster.cluster.existing import (
    PRIVATE_DIR_PREFIX,
    ExistingCluster,
    display_name,
    remove_stale_private_dirs,
)
from pytest_kindcluster.cluster.ownership import Owner
from pytest_kindcluster.errors import ClusterUnreachable, ConfigError, ExistingClusterError
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.runtime.fake import FakeRuntime
from tests.support import EKS, GKE, cloud_kubeconfig


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp dir of its own, so private directories can be counted."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def test_cloud_names_are_names_and_never_checked_as_kind_names() -> None:
    assert display_name(GKE) == GKE
    assert display_name(EKS) == EKS
    assert display_name("kind-demo") == "demo"


def test_context_picks_the_cluster_and_the_name(tmp_path: Path) -> None:
    path = cloud_kubeconfig(tmp_path / "home" / "config")
    assert ExistingCluster(path).name == GKE
    assert ExistingCluster(path, context=EKS).name == EKS
    with pytest.raises(ConfigError, match="has no context 'nope'"):
        ExistingCluster(path, context="nope")


def test_an_unreachable_apiserver_is_one_error_and_leaves_nothing(
    tmp_path: Path, private_tmp: Path
) -> None:
    home = tmp_path / "home"
    path = cloud_kubeconfig(home / "config")
    cluster = ExistingCluster(path, context=EKS, timeout=300)
    with pytest.raises(ClusterUnreachable) as info:
        cluster.create()
    assert str(info.value).startswith("cannot reach the apiserver at https://127.0.0.1:1: ")
    assert list(private_tmp.iterdir()) == []
    assert [p.name for p in home.iterdir()] == ["config"]
    assert cluster.kubeconfig_path == path


def test_the_private_copy_is_pinned_to_the_context_and_removed_at_close(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    states: dict[str, str] = {}

    def fake_wait(api: Any, **kwargs: Any) -> dict[str, float]:
        kwargs["last_state"].update({"apiserver /readyz": "ok", "nodes Ready": "forbidden"})
        states.update(kwargs["last_state"])
        assert kwargs["forbidden_ok"] is True
        return {}

    monkeypatch.setattr(readiness, "probe_apiserver", lambda api: None)
    monkeypatch.setattr(readiness, "wait_ready", fake_wait)
    home = tmp_path / "home"
    path = cloud_kubeconfig(home / "config")
    cluster = ExistingCluster(path, context=EKS).create()
    private = cluster.kubeconfig_path
    assert private.parent.parent == private_tmp
    assert oct(private.parent.stat().st_mode & 0o777) == "0o700"
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    doc = yaml.safe_load(private.read_text())
    assert doc["current-context"] == EKS
    assert [c["name"] for c in doc["contexts"]] == [EKS]
    assert cluster.api_client.configuration.host == "https://127.0.0.1:1"
    assert cluster.checks == states
    cluster.close()
    assert list(private_tmp.iterdir()) == []
    assert [p.name for p in home.iterdir()] == ["config"]  # nothing next to the user's file


def test_private_dirs_of_dead_runs_are_removed(private_tmp: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    pid_ns = Owner.of().pid_ns
    stale = private_tmp / f"{PRIVATE_DIR_PREFIX}{dead}-0-{pid_ns}-abc"
    live = private_tmp / f"{PRIVATE_DIR_PREFIX}{os.getpid()}-0-{pid_ns}-def"
    # Another PID namespace's, or an older layout's: the owner cannot be checked from here.
    foreign = private_tmp / f"{PRIVATE_DIR_PREFIX}{dead}-0-4026531999-ghi"
    old_layout = private_tmp / f"{PRIVATE_DIR_PREFIX}{dead}-0-jkl"
    for path in (stale, live, foreign, old_layout):
        path.mkdir()
        (path / "kubeconfig").write_text("secret")
    assert remove_stale_private_dirs() == [stale]
    assert [p.exists() for p in (live, foreign, old_layout)] == [True, True, True]


def test_kubectl_is_the_default_node_images_else_paths_else_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = cloud_kubeconfig(tmp_path / "home" / "config")
    fake = FakeRuntime()
    from_image = ExistingCluster(path, images=fake).kubectl_path
    assert from_image == tmp_path / "cache/pytest-kindcluster/kubectl/node/kubectl"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text("#!/bin/sh\necho host kubectl\n")
    (bin_dir / "kubectl").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    no_image = FakeRuntime(images={})
    assert ExistingCluster(path, images=no_image).kubectl_path == bin_dir / "kubectl"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(existing, "connect_engine", lambda: no_image)
    with pytest.raises(ExistingClusterError) as info:
        _ = ExistingCluster(path).kubectl_path
    assert str(info.value).startswith(
        "no kubectl to run: the node image pytest-kindcluster/node:v1.37.2 is not in the engine, "
        "and there is no kubectl on PATH."
    )


def test_what_needs_node_containers_is_refused_clearly(tmp_path: Path) -> None:
    cluster = ExistingCluster(cloud_kubeconfig(tmp_path / "config"))
    with pytest.raises(ExistingClusterError, match="existing-cluster mode"):
        cluster.load_docker_image("busybox:1.36")
    with pytest.raises(ExistingClusterError, match="cannot run commands in the nodes"):
        cluster.exec_in_node("true")
    assert not hasattr(cluster, "api")  # pytest-kind's pykube client: see .api_client
