"""The upstream kind CLI sees, inspects and deletes clusters this plugin made (kind's labels).

Needs the kind CLI (``go install sigs.k8s.io/kind@v0.33.0``); like the other kindproof tests it
fails, never skips, without it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_kindcluster import KindCluster
from tests.support import KIND_INSTALL_HINT, find_kind_cli, unique

pytestmark = [pytest.mark.integration, pytest.mark.kindproof]


def kind_cli() -> str:
    found = find_kind_cli()
    if found is None:
        pytest.fail(f"the kind CLI is not installed; run: {KIND_INSTALL_HINT}")
    return found


def kind(*args: str) -> str:
    result = subprocess.run([kind_cli(), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"kind {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout + result.stderr


def test_kind_lists_exports_and_deletes_our_cluster(
    node_image: str, leftovers: Any, tmp_path: Path
) -> None:
    name = unique("it-interop")
    cluster = KindCluster(name, retain="always", kubeconfig=tmp_path / "plugin" / "kubeconfig")
    cluster.create()
    try:
        assert name in kind("get", "clusters").split()
        assert kind("get", "nodes", "--name", name).split() == [f"{name}-control-plane"]
        kind("export", "logs", str(tmp_path), "--name", name)
        assert (tmp_path / f"{name}-control-plane" / "kubelet.log").stat().st_size > 0
        kubeconfig = tmp_path / "kind-kubeconfig"
        kind("export", "kubeconfig", "--name", name, "--kubeconfig", str(kubeconfig))
        assert "https://127.0.0.1:" in kubeconfig.read_text()
    finally:
        cluster.detach()
        kind("delete", "cluster", "--name", name, "--kubeconfig", str(tmp_path / "kind-kubeconfig"))
    assert leftovers(name) == {"containers": [], "volumes": []}
