"""The create flow, rollback and retention, against the in-memory runtime.

Readiness talks to a real apiserver, so it is replaced here by a stub; its own logic is tested
in test_readiness.py and for real in the integration tests.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.contract import (
    CLUSTER_LABEL,
    CREATED_LABEL,
    NETWORK_CLUSTER_LABEL,
    OWNER_PID_LABEL,
    ROLE_LABEL,
    RUN_ID_LABEL,
)
from pytest_kindcluster.errors import (
    CommandFailed,
    ConfigError,
    ImageError,
    ProvisionError,
    ReadinessTimeout,
)
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.provision import ClusterSpec, build_steps
from pytest_kindcluster.provision import nodes as nodes_module
from pytest_kindcluster.runtime.fake import FakeRuntime


def make(fake: FakeRuntime, tmp_path: Path, **kwargs: Any) -> KindCluster:
    kwargs.setdefault("kubeconfig", tmp_path / "kc" / "kubeconfig")
    kwargs.setdefault("logs_dir", tmp_path / "logs")
    return KindCluster("demo", runtime=fake, images=fake, run_id="run1", **kwargs)


def test_steps_for_single_node_and_for_workers() -> None:
    single = [s.name for s in build_steps(ClusterSpec("a", "img"))]
    assert single == [
        "preflight", "network", "nodes", "kubeadm-config", "kubeadm-init",
        "untaint", "kubeconfig", "ready",
    ]  # fmt: skip
    multi = [s.name for s in build_steps(ClusterSpec("a", "img", workers=2))]
    assert multi[5] == "join"


def test_single_node_flow(tmp_path: Path, ready_calls: list[dict[str, Any]]) -> None:
    fake = FakeRuntime()
    cluster = make(fake, tmp_path).create()
    cp = "demo-control-plane"
    assert [n.name for n in cluster.nodes] == [cp]
    labels = fake.containers[cp].labels
    assert labels[CLUSTER_LABEL] == "demo"
    assert labels[ROLE_LABEL] == "control-plane"
    assert labels[RUN_ID_LABEL] == "run1"
    assert {OWNER_PID_LABEL, CREATED_LABEL} <= set(labels)
    assert fake.containers[cp].spec.publish_api_server
    assert labels[OWNER_PID_LABEL] == str(os.getpid())
    # Shared, created as kind creates it: no labels of ours, so no run takes it for its own.
    assert fake.networks == {"kind": {}}

    commands = fake.commands(cp)
    assert (
        "kubeadm",
        "init",
        "--config=/kind/kubeadm.conf",
        "--skip-token-print",
        "--v=6",
    ) in commands
    assert any("node-role.kubernetes.io/control-plane-" in argv for argv in commands)
    kubeadm_conf = list(yaml.safe_load_all(fake.containers[cp].files["/kind/kubeadm.conf"]))
    kubelet = next(d for d in kubeadm_conf if d["kind"] == "KubeletConfiguration")
    assert kubelet["failCgroupV1"] is False  # the fake engine reports cgroup v1
    coredns = yaml.safe_load(fake.containers[cp].files["/kind/patches/corednsdeployment.yaml"])
    assert coredns["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] == {
        "periodSeconds": 1
    }
    cni = fake.stdin_of("kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "create")
    assert "--pod-cidr=10.244.0.0/16" in cni
    assert "StorageClass" in fake.stdin_of(
        "kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "apply"
    )

    kubeconfig = yaml.safe_load(cluster.kubeconfig_path.read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:40000"
    assert stat.S_IMODE(cluster.kubeconfig_path.stat().st_mode) == 0o600
    assert cluster.api_client.configuration.host == "https://127.0.0.1:40000"
    assert ready_calls == [{"expected_nodes": 1, "timeout": 300.0}]
    assert [t.name for t in cluster.timings][-1] == "ready"
    assert cluster.ready_seconds is not None

    cluster.close()
    assert fake.containers == {}
    assert list(fake.networks) == ["kind"]  # shared: never removed, as kind never removes it
    assert not cluster.kubeconfig_path.exists()


def test_workers_are_joined_with_their_own_configs(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    cluster = make(fake, tmp_path, workers=2).create()
    assert [(n.name, n.role) for n in cluster.nodes] == [
        ("demo-control-plane", "control-plane"),
        ("demo-worker", "worker"),
        ("demo-worker2", "worker"),
    ]
    token = None
    for worker in ("demo-worker", "demo-worker2"):
        assert ("kubeadm", "join", "--config=/kind/kubeadm.conf", "--v=6") in fake.commands(worker)
        (join,) = yaml.safe_load_all(fake.containers[worker].files["/kind/kubeadm.conf"])
        assert join["kind"] == "JoinConfiguration"
        token = token or join["discovery"]["bootstrapToken"]["token"]
        assert join["discovery"]["bootstrapToken"]["token"] == token
    assert not any("node-role.kubernetes.io/control-plane-" in a for a in fake.commands())
    assert ready_calls[0]["expected_nodes"] == 3
    cluster.delete()
    assert fake.containers == {}


def test_failed_step_rolls_back_only_this_runs_nodes_and_exports_logs(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    fake.add_foreign_node("other-control-plane", "other")
    fake.fail(("kubeadm", "init"), exit_code=3, output="[kubelet-check] it is not healthy")
    cluster = make(fake, tmp_path)
    with pytest.raises(ProvisionError) as info:
        cluster.create()
    error = info.value
    assert error.step == "kubeadm-init"
    text = str(error)
    assert "kubeadm init" in text
    assert "exited 3" in text
    assert "it is not healthy" in text
    assert error.logs_dir == str(tmp_path / "logs" / "demo")
    assert (tmp_path / "logs" / "demo" / "demo-control-plane" / "serial.log").exists()
    assert any("rolled back" in note for note in error.__notes__)
    assert list(fake.containers) == ["other-control-plane"]
    assert list(fake.networks) == ["kind"]  # the rollback leaves the shared network too
    assert ready_calls == []


def test_retain_on_failure_keeps_the_failed_cluster(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    fake.fail(("kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "create"))
    # The CNI goes in during kubeadm init, so that is the step that fails.
    with pytest.raises(ProvisionError, match="step 'kubeadm-init' failed") as info:
        make(fake, tmp_path, retain="on-failure").create()
    assert "demo-control-plane" in fake.containers
    assert any("kept for debugging" in note for note in info.value.__notes__)


def test_readiness_timeout_keeps_its_type_and_gains_the_logs_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never_ready(api: Any, **kwargs: Any) -> dict[str, float]:
        raise ReadinessTimeout(1, {"nodes Ready": "0/1 Ready"})

    monkeypatch.setattr(readiness, "wait_ready", never_ready)
    fake = FakeRuntime()
    with pytest.raises(ReadinessTimeout) as info:
        make(fake, tmp_path).create()
    assert info.value.last_state == {"nodes Ready": "0/1 Ready"}
    assert info.value.logs_dir == str(tmp_path / "logs" / "demo")
    assert "logs exported to" in str(info.value)
    assert fake.containers == {}


def test_taken_name_is_refused_and_the_existing_cluster_left_alone(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    fake.add_foreign_node("demo-control-plane", "demo")
    with pytest.raises(ConfigError, match="already exists"):
        make(fake, tmp_path).create()
    assert list(fake.containers) == ["demo-control-plane"]


def test_missing_node_image_fails_before_creating_anything(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime(images={})
    with pytest.raises(ImageError, match="node-image build"):
        make(fake, tmp_path).create()
    assert fake.containers == {}
    assert fake.networks == {}


def test_reuse_attaches_and_checks_readiness(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    make(fake, tmp_path, retain="always").create().close()
    assert "demo-control-plane" in fake.containers  # retained
    calls_before = len(fake.commands())
    again = KindCluster(
        "demo", runtime=fake, images=fake, reuse=True, kubeconfig=tmp_path / "kc2" / "kubeconfig"
    ).create()
    assert again.reused
    new_commands = fake.commands()[calls_before:]
    assert not any(argv[:2] == ("kubeadm", "init") for argv in new_commands)
    assert len(ready_calls) == 2
    again.close()
    assert "demo-control-plane" in fake.containers  # a reused cluster is never deleted


def test_deleting_a_kept_cluster_removes_every_kubeconfig_made_for_it(
    tmp_path: Path, ready_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fake = FakeRuntime()
    first = KindCluster("demo", runtime=fake, images=fake, retain="always").create()
    first.close()
    second = KindCluster("demo", runtime=fake, images=fake, reuse=True).create()
    second.close()
    other = KindCluster("demo-2", runtime=fake, images=fake)  # a name that extends "demo"
    kept = sorted(p.name for p in tmp_path.glob("kindcluster-demo-*"))
    assert len(kept) == 3  # two kept for "demo", one for "demo-2"
    assert first.kubeconfig_path.exists()
    KindCluster("demo", runtime=fake, images=fake).delete()
    assert list(tmp_path.glob("kindcluster-demo-*")) == [other.kubeconfig_path.parent]


def test_network_not_ours_or_in_use_is_kept(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    fake.networks["kind"] = {}  # made by kind itself
    make(fake, tmp_path).create().close()
    assert "kind" in fake.networks
    # Even labelled as an older version of this plugin labelled it, or as one cluster's own.
    fake.networks["kind"] = {"dev.pytest-kindcluster.network": "true", NETWORK_CLUSTER_LABEL: "x"}
    make(fake, tmp_path).create().close()
    assert "kind" in fake.networks


def test_a_network_made_for_one_cluster_alone_goes_with_it(
    tmp_path: Path, ready_calls: list[dict[str, Any]]
) -> None:
    fake = FakeRuntime()
    fake.networks["demo-net"] = {NETWORK_CLUSTER_LABEL: "demo"}
    cluster = make(fake, tmp_path)
    cluster.spec = replace(cluster.spec, network="demo-net")
    cluster.create()
    assert fake.containers["demo-control-plane"].spec.network == "demo-net"
    assert not fake.remove_network("demo-net")  # in use
    cluster.close()
    assert fake.networks == {}


@pytest.mark.parametrize("name", ["UPPER", "-dash", "a" * 50, "under_score", ""])
def test_invalid_names_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError):
        KindCluster(name)


def test_kubectl_runs_the_node_images_kubectl_on_the_host_like_a_host_kubectl(
    tmp_path: Path, ready_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake node image's kubectl is a script that echoes how it was run (runtime/fake.py).
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    fake = FakeRuntime()
    cluster = make(fake, tmp_path).create()
    in_node_before = len(fake.commands())
    (tmp_path / "deploy.yaml").write_text("kind: Deployment\n")
    out = cluster.kubectl("apply", "-f", "deploy.yaml")  # a host path, relative to the cwd
    assert "args: apply -f deploy.yaml" in out
    assert f"KUBECONFIG={cluster.kubeconfig_path}" in out
    assert f"KUBECACHEDIR={cluster.kubeconfig_path.parent / 'cache'}" in out  # not ~/.kube
    assert f"cwd: {tmp_path}" in out
    assert "stdin: kind: Inline" in cluster.kubectl("apply", "-f", "-", stdin="kind: Inline\n")
    assert "stdin: pytest-kind" in cluster.kubectl("apply", "-f", "-", input="pytest-kind")
    with pytest.raises(CommandFailed, match="exited 3") as info:
        cluster.kubectl("fail")
    assert "told to fail" in info.value.output
    assert len(fake.commands()) == in_node_before  # nothing ran inside a node
    # Copied out of the image once, and cached by image ID.
    assert cluster.kubectl_path == tmp_path / "cache/pytest-kindcluster/kubectl/node/kubectl"
    assert fake.copies.count(("pytest-kindcluster/node:v1.37.2", "/usr/bin/kubectl")) == 1
    other = make(fake, tmp_path, kubeconfig=tmp_path / "other" / "kubeconfig")
    assert other.kubectl_path == cluster.kubectl_path
    assert fake.copies.count(("pytest-kindcluster/node:v1.37.2", "/usr/bin/kubectl")) == 1
    cluster.delete()


def test_apply_takes_yaml_text_a_file_or_a_directory(
    tmp_path: Path, ready_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cluster = make(FakeRuntime(), tmp_path).create()
    manifest_dir = tmp_path / "manifests"
    manifest_dir.mkdir()
    (manifest_dir / "a.yaml").write_text("kind: A\n")
    (manifest_dir / "b.yml").write_text("kind: B\n")
    (manifest_dir / "notes.txt").write_text("ignored")
    assert "stdin: kind: A\n\n---\nkind: B\n" in cluster.apply(manifest_dir)
    assert "stdin: kind: Inline" in cluster.apply("kind: Inline\n")
    (tmp_path / "one.yaml").write_text("kind: File\n")
    assert "stdin: kind: File" in cluster.apply(str(tmp_path / "one.yaml"))
    cluster.delete()


def test_exec_in_node_runs_inside_a_node(tmp_path: Path, ready_calls: list[dict[str, Any]]) -> None:
    fake = FakeRuntime()
    cluster = make(fake, tmp_path, workers=1).create()
    cluster.exec_in_node("kubectl", "get", "pods")
    assert fake.commands("demo-control-plane")[-1] == ("kubectl", "get", "pods")
    cluster.exec_in_node("cat", "/kind/version", node="demo-worker")
    assert fake.commands("demo-worker")[-1] == ("cat", "/kind/version")
    with pytest.raises(ConfigError, match="has no node 'nope' \\(nodes: demo-control-plane, "):
        cluster.exec_in_node("true", node="nope")
    cluster.delete()


def test_an_image_without_kubectl_and_no_kubectl_on_path_is_a_clear_error(
    tmp_path: Path, ready_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    image = "custom/node:v1"
    fake = FakeRuntime(
        images={image: "sha256:custom"}, image_files={image: {"/kind/version": b"v1.37.2\n"}}
    )
    cluster = make(fake, tmp_path, image=image).create()
    with pytest.raises(ImageError) as info:
        cluster.kubectl("get", "pods")
    assert str(info.value).startswith(
        f"no kubectl to run: the node image {image} has no /usr/bin/kubectl that runs on this "
        "host, and there is no kubectl on PATH."
    )
    cluster.delete()


def test_a_worker_that_never_boots_fails_the_join_with_its_console(
    tmp_path: Path, ready_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    class SilentWorker(FakeRuntime):
        def logs(self, node: str, *, tail: int | None = None) -> str:
            return "Welcome to Debian\n" if "worker" in node else super().logs(node)

    monkeypatch.setattr(nodes_module, "BOOT_TIMEOUT", 0.3)
    fake = SilentWorker()
    with pytest.raises(ProvisionError) as info:
        make(fake, tmp_path, workers=1).create()
    assert info.value.step == "join"
    assert "demo-worker did not reach systemd's multi-user target" in str(info.value)
    assert "Welcome to Debian" in str(info.value)
    # the control plane was not held back by the worker's boot
    assert ("kubeadm", "init", "--config=/kind/kubeadm.conf", "--skip-token-print", "--v=6") in [
        argv for _, argv, _ in fake.calls
    ]
    assert fake.containers == {}
