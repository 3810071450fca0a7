"""Helpers shared by the integration tests, the kind-CLI proof and the benchmark.

Importable as ``tests.support`` from the repository root (pytest puts the root on ``sys.path``
through the root conftest.py; the benchmark runs as ``python -m bench.bench``).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_kindcluster.contract import CLUSTER_LABEL

if TYPE_CHECKING:
    import pytest

# The inner pytest sessions that integration tests run in a subprocess.
SESSIONS = Path(__file__).parent / "integration" / "sessions"
KIND_VERSION = "v0.33.0"
KIND_INSTALL_HINT = f"go install sigs.k8s.io/kind@{KIND_VERSION}"
# An inner session's conftest.py: an in-memory engine (ENGINE) for every cluster, readiness
# taken as given. A test adds its own hooks after it.
FAKE_ENGINE_CONFTEST = """\
import pytest
from pytest_kindcluster.runtime.fake import FakeRuntime
from pytest_kindcluster.kube import readiness

readiness.wait_ready = lambda api, **kwargs: {}
ENGINE = FakeRuntime()

@pytest.fixture(scope="session")
def kind_runtime():
    return ENGINE
"""


def unique(prefix: str) -> str:
    """A cluster name no other test (or concurrent run) uses."""
    return f"{prefix}-{secrets.token_hex(3)}"


def dead_pid() -> int:
    """A pid that existed a moment ago and is gone now (a finished child's)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def run_session(pytester: pytest.Pytester, session: str, *args: str) -> pytest.RunResult:
    """Run ``sessions/<session>`` in a subprocess pytest, verbose, without cache or shuffling."""
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider -p no:randomly\n")
    return pytester.runpytest_subprocess(str(SESSIONS / session), "-v", *args, timeout=1500)


class Session:
    """A pytest run of ``sessions/<session>`` in the background, its output in a file.

    A file and not a pipe: a pipe nobody reads fills up and blocks the run.

    ``wrap`` goes before the interpreter, e.g. ``unshare --pid --fork --mount-proc``.
    """

    def __init__(
        self,
        cwd: Path,
        session: str,
        *args: str,
        env: dict[str, str] | None = None,
        wrap: Sequence[str] = (),
    ) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        self.log = cwd / "output.txt"
        argv = [*wrap, sys.executable, "-m", "pytest", str(SESSIONS / session), "-v"]
        argv += ["-p", "no:cacheprovider", "-p", "no:randomly", *args]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )

    def output(self) -> str:
        """What the run printed so far."""
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 1500) -> tuple[int, str]:
        """The exit status and the whole output."""
        code = self.proc.wait(timeout=timeout)
        return code, self.output()

    def stop(self) -> None:
        """Kill the run if it is still going (a failed test must not leave it running)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


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


def error_section(output: str, test: str) -> list[str]:
    """The lines pytest prints for one test's error, from its ``ERROR at setup of`` header on.

    The section ends where the next one (another test's, or a summary) begins. Its length is
    what a user reads past to learn what went wrong.
    """
    lines = output.splitlines()
    header = re.compile(rf"^_+ ERROR at (setup|teardown) of {re.escape(test)}(\[.*\])? _+$")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    assert start is not None, f"no error section for {test}:\n{output}"
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if re.match(r"^(_{3,} .* _{3,}|={3,}.*={3,})$", lines[i])
        ),
        len(lines),
    )
    return lines[start:end]


# Context names shaped like the cloud providers' (never valid kind cluster names).
GKE = "gke_my-project_europe-west1-b_prod"
EKS = "arn:aws:eks:eu-west-1:123456789012:cluster/x"


def cloud_kubeconfig(
    path: Path, *, server: str = "https://127.0.0.1:1", current: str = GKE
) -> Path:
    """A token kubeconfig with a GKE- and an EKS-named context, both pointing at ``server``."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": server}} for n in (GKE, EKS)],
        "users": [{"name": "u", "user": {"token": "secret-token"}}],
        "contexts": [{"name": n, "context": {"cluster": n, "user": "u"}} for n in (GKE, EKS)],
        "current-context": current,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path
