"""Helpers shared by the integration tests, the kind-CLI proof and the benchmark.

Importable as ``tests.support`` from the repository root (pytest puts the root on ``sys.path``
through the root conftest.py; the benchmark runs as ``python -m bench.bench``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_kindcluster.contract import CLUSTER_LABEL

if TYPE_CHECKING:
    import pytest

# The inner pytest sessions that integration tests run in a subprocess.
SESSIONS = Path(__file__).parent / "integration" / "sessions"
KIND_VERSION = "v0.33.0"
KIND_INSTALL_HINT = f"go install sigs.k8s.io/kind@{KIND_VERSION}"


def unique(prefix: str) -> str:
    """A cluster name no other test (or concurrent run) uses."""
    return f"{prefix}-{secrets.token_hex(3)}"


def run_session(pytester: pytest.Pytester, session: str, *args: str) -> pytest.RunResult:
    """Run ``sessions/<session>`` in a subprocess pytest, verbose, without cache or shuffling."""
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider -p no:randomly\n")
    return pytester.runpytest_subprocess(str(SESSIONS / session), "-v", *args, timeout=1500)


def find_kind_cli() -> str | None:
    """The upstream kind CLI: ``$KIND_BIN``, else ``PATH``, else ``go install``'s location."""
    candidates = [os.environ.get("KIND_BIN"), shutil.which("kind")]
    go = shutil.which("go")
    if go:
        gopath = subprocess.run([go, "env", "GOPATH"], capture_output=True, text=True, check=False)
        if gopath.returncode == 0:
            candidates.append(str(Path(gopath.stdout.strip()) / "bin" / "kind"))
    return next((c for c in candidates if c and Path(c).is_file()), None)


def kind_cli_config(workers: int, *, cgroup_v1: bool, labels: dict[str, str] | None = None) -> str:
    """A kind v1alpha4 config for the kind CLI: one control plane and ``workers`` workers.

    On a cgroup v1 host, Kubernetes >= 1.35 kubelets need ``failCgroupV1: false``, which the
    plugin sets by itself and the kind CLI does not. ``labels`` go on the control plane.
    """
    lines = ["kind: Cluster", "apiVersion: kind.x-k8s.io/v1alpha4", "nodes:"]
    lines += ["- role: control-plane"]
    if labels:
        lines.append("  labels: {" + ", ".join(f"{k}: {v}" for k, v in labels.items()) + "}")
    lines += ["- role: worker"] * workers
    if cgroup_v1:
        lines += [
            "kubeadmConfigPatches:",
            "- |",
            "  kind: KubeletConfiguration",
            "  failCgroupV1: false",
        ]
    return "\n".join(lines) + "\n"


def leftovers(client: Any, cluster: str) -> dict[str, list[str]]:
    """Containers and volumes that still carry the cluster's kind label."""
    selector: dict[str, str | list[str] | bool] = {"label": f"{CLUSTER_LABEL}={cluster}"}
    containers = client.containers.list(all=True, filters=selector)
    return {
        "containers": [c.name or "" for c in containers],
        "volumes": [v.name or "" for v in client.volumes.list(filters=selector)],
    }
