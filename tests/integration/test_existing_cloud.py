"""Existing-cluster mode as a cloud user meets it, and kubectl on the host, on one real cluster.

The cluster is made by the plugin; the tests then use it the way a GKE or EKS user would:
through a TOKEN kubeconfig whose context and cluster are named like a cloud provider's, with
credentials (a ServiceAccount token) that may only create and delete namespaces.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml
from kubernetes import client as k8s_client

from pytest_kindcluster import KindCluster
from pytest_kindcluster.cluster.ownership import Owner
from pytest_kindcluster.contract import RUN_ID_LABEL
from pytest_kindcluster.util.waiting import wait_until
from tests.support import dead_pid, run_session, unique

pytestmark = pytest.mark.integration

CONTEXT = "gke_my-project_europe-west1-b_prod"
ACCOUNT = "namespace-creator"
MANAGED_BY = {"app.kubernetes.io/managed-by": "pytest-kindcluster"}


@pytest.fixture(scope="module")
def cluster(node_image: str) -> Iterator[KindCluster]:
    with KindCluster(unique("it-cloud")) as made:
        yield made


@pytest.fixture(scope="module")
def token(cluster: KindCluster) -> str:
    """A ServiceAccount token that may create and delete namespaces, and get /readyz: no more."""
    api = cluster.api_client
    core: Any = k8s_client.CoreV1Api(api)
    rbac: Any = k8s_client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account("default", {"metadata": {"name": ACCOUNT}})
    rules = [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create", "delete"]},
        {"nonResourceURLs": ["/readyz"], "verbs": ["get"]},
    ]
    rbac.create_cluster_role({"metadata": {"name": ACCOUNT}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": ACCOUNT},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": ACCOUNT},
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": "default"}],
        }
    )  # fmt: skip
    # Host kubectl (the node image's own) makes the token, as a user would with theirs.
    return cluster.kubectl("create", "token", ACCOUNT, "-n", "default", "--duration=1h").strip()


def cloud_kubeconfig(cluster: KindCluster, token: str, path: Path) -> Path:
    """A user's kubeconfig: the token context named like GKE's, and another one as current."""
    admin = yaml.safe_load(cluster.kubeconfig_path.read_text())["clusters"][0]["cluster"]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CONTEXT, "cluster": {
                "server": admin["server"],
                "certificate-authority-data": admin["certificate-authority-data"]}},
            {"name": "elsewhere", "cluster": {"server": "https://127.0.0.1:1"}},
        ],
        "users": [
            {"name": CONTEXT, "user": {"token": token}},
            {"name": "elsewhere", "user": {"token": "not-this-one"}},
        ],
        "contexts": [
            {"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT}},
            {"name": "elsewhere", "context": {"cluster": "elsewhere", "user": "elsewhere"}},
        ],
        "current-context": "elsewhere",
    }  # fmt: skip
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(root.rglob("*"))
    }


def gone_or_terminating(core: Any, names: list[str]) -> None:
    def done() -> bool | None:
        left = [
            n.metadata.name for n in core.list_namespace().items
            if n.metadata.name in names and n.status.phase != "Terminating"
        ]  # fmt: skip
        return True if not left else None

    wait_until(done, what=f"namespaces {names} to be deleted", timeout=60)


@pytest.fixture
def user_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A user's HOME (with ~/.kube/config), a temp dir, a record dir: all watched."""
    dirs = {name: tmp_path / name for name in ("home", "tmp", "record", "cache")}
    for path in dirs.values():
        path.mkdir()
    monkeypatch.setenv("HOME", str(dirs["home"]))
    monkeypatch.setenv("TMPDIR", str(dirs["tmp"]))
    monkeypatch.setenv("KIND_RECORD_DIR", str(dirs["record"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(dirs["cache"]))  # kubectl's copy: a cache
    monkeypatch.setenv("KIND_CLOUD_CONTEXT", CONTEXT)
    return dirs


def records(record_dir: Path, prefix: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(record_dir.glob(f"{prefix}*.json"))]


def test_a_token_kubeconfig_with_a_cloud_context_and_create_only_rights(
    pytester: pytest.Pytester, cluster: KindCluster, token: str, user_env: dict[str, Path]
) -> None:
    kubeconfig = cloud_kubeconfig(cluster, token, user_env["home"] / ".kube" / "config")
    home_before = snapshot(user_env["home"])
    result = run_session(
        pytester, "existing_cloud.py", f"--kind-kubeconfig={kubeconfig}",
        f"--kind-context={CONTEXT}",
    )  # fmt: skip
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(
        [
            f"kind {CONTEXT}: apiserver /readyz: ok",
            f"kind {CONTEXT}: nodes Ready: forbidden to these credentials (HTTP 403): not checked",
            f"kind {CONTEXT}: CoreDNS available: forbidden to these credentials (HTTP 403): *",
            f"kind {CONTEXT}: default ServiceAccount: forbidden to these credentials (HTTP 403): *",
            f"kind {CONTEXT}: existing cluster (context {CONTEXT}) ready in *s",
            f"kind {CONTEXT}: cannot list namespaces (forbidden): leftovers of crashed runs not "
            "swept",
            f"kind {CONTEXT}: existing cluster left as it is",
        ]
    )
    # Nothing next to the user's kubeconfig (nor anywhere in HOME), nothing in the temp dir.
    assert snapshot(user_env["home"]) == home_before
    assert list(user_env["tmp"].iterdir()) == []
    (private,) = records(user_env["record"], "kubeconfig")
    assert not Path(private["path"]).exists()
    # And no namespaces: every test's namespace was deleted (as the token could).
    names = [r["namespace"] for r in records(user_env["record"], "ns")]
    assert len(set(names)) == 4
    gone_or_terminating(k8s_client.CoreV1Api(cluster.api_client), names)


def test_xdist_workers_each_make_their_own_namespaces(
    pytester: pytest.Pytester, cluster: KindCluster, token: str, user_env: dict[str, Path]
) -> None:
    kubeconfig = cloud_kubeconfig(cluster, token, user_env["home"] / ".kube" / "config")
    result = run_session(
        pytester, "existing_cloud.py", f"--kind-kubeconfig={kubeconfig}",
        f"--kind-context={CONTEXT}", "-n", "2", "-k", "namespace",
    )  # fmt: skip
    result.assert_outcomes(passed=4)
    seen = records(user_env["record"], "ns")
    assert len({r["namespace"] for r in seen}) == 4
    assert {r["worker"] for r in seen} == {"gw0", "gw1"}
    assert list(user_env["tmp"].iterdir()) == []
    gone_or_terminating(k8s_client.CoreV1Api(cluster.api_client), [r["namespace"] for r in seen])


def test_namespaces_left_by_a_crashed_run_are_deleted_by_the_next(
    pytester: pytest.Pytester, cluster: KindCluster
) -> None:
    core: Any = k8s_client.CoreV1Api(cluster.api_client)
    suffix = secrets.token_hex(3)
    here = Owner.of()  # a crashed run of this host and PID namespace: provably gone
    crashed = Owner(here.host, dead_pid(), "", here.pid_ns, here.boot_id)
    made = {
        f"leftover-{suffix}": (MANAGED_BY | {RUN_ID_LABEL: "crashed"}, crashed.labels()),
        f"live-{suffix}": (MANAGED_BY | {RUN_ID_LABEL: "live"}, Owner.of().labels()),
        f"foreign-{suffix}": ({}, crashed.labels()),
    }
    for name, (labels, notes) in made.items():
        core.create_namespace({"metadata": {"name": name, "labels": labels, "annotations": notes}})
    try:
        # Any session's first kind_namespace sweeps; the admin kubeconfig may list namespaces.
        result = run_session(
            pytester, "existing.py", f"--kind-kubeconfig={cluster.kubeconfig_path}"
        )
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines(
            [f"kind {cluster.name}: deleted namespaces left by crashed runs: leftover-{suffix}"]
        )
        gone_or_terminating(core, [f"leftover-{suffix}"])
        phases = {n.metadata.name: n.status.phase for n in core.list_namespace().items}
        assert phases[f"live-{suffix}"] == phases[f"foreign-{suffix}"] == "Active"
    finally:
        for name in made:
            core.delete_namespace(name)


def test_kubectl_runs_on_the_host_and_exec_in_node_inside(
    cluster: KindCluster,
    docker_client: docker.DockerClient,
    node_image: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The point: no kubectl on the host (this machine may have one: hide it).
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert shutil.which("kubectl") is None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    Path("cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-host, namespace: default}\n"
        "data: {where: host-file}\n"
    )
    cluster.kubectl("apply", "-f", "cm.yaml")  # a host path, relative to the cwd
    jsonpath = "jsonpath={.data.where}"
    assert cluster.kubectl("get", "configmap", "from-host", "-o", jsonpath) == "host-file"
    # kubectl's discovery cache went next to the private kubeconfig, not into ~/.kube.
    assert (cluster.kubeconfig_path.parent / "cache").is_dir()
    assert not (tmp_path / "home" / ".kube").exists()
    cluster.kubectl("create", "configmap", "from-stdin", "--from-file=where=/dev/stdin",
                    stdin="stdin")  # fmt: skip
    assert cluster.kubectl("get", "configmap", "from-stdin", "-o", jsonpath) == "stdin"
    # KUBECONFIG-style use of the cached binary, as a script would.
    out = subprocess.run(
        [str(cluster.kubectl_path), "get", "configmap", "from-host", "-o", "name"],
        env={"KUBECONFIG": str(cluster.kubeconfig_path), "KUBECACHEDIR": str(tmp_path / "c")},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out == "configmap/from-host\n"
    # The node image's own kubectl, cached under its image ID.
    image_id = str(docker_client.images.get(node_image).id)
    assert cluster.kubectl_path.parent.name == image_id.split(":", 1)[1]
    version = json.loads(cluster.kubectl("version", "--client", "-o", "json"))
    assert version["clientVersion"]["gitVersion"] == "v1.37.2"
    # Inside the node, kubectl uses the node's admin.conf.
    assert cluster.exec_in_node("kubectl", "get", "configmap", "from-host", "-o", "name") == (
        "configmap/from-host\n"
    )
    assert cluster.exec_in_node("cat", "/kind/version").startswith("v1.37")
    for name in ("from-host", "from-stdin"):
        cluster.kubectl("delete", "configmap", name)
    assert os.environ.get("KUBECONFIG") is None  # nothing leaked into this process
