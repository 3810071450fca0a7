"""The kubeadm config rendered for each node, per Kubernetes version and host."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.provision.kubeadm import bootstrap_token
from pytest_kindcluster.provision.kubeadm_config import (
    COREDNS_PATCH,
    KubeadmParams,
    kubeadm_api_version,
    parse_version,
    render_kubeadm_config,
)


def params(**overrides: Any) -> KubeadmParams:
    values: dict[str, Any] = {
        "cluster": "demo",
        "kubernetes_version": "v1.37.2",
        "node_name": "demo-control-plane",
        "node_ip": "172.18.0.2",
        "role": "control-plane",
        "bootstrap": True,
        "token": "abcdef.0123456789abcdef",
    }
    values.update(overrides)
    return KubeadmParams(**values)


def docs(p: KubeadmParams) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(render_kubeadm_config(p))}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("v1.37.2", "kubeadm.k8s.io/v1beta4"),
        ("v1.36.0", "kubeadm.k8s.io/v1beta4"),
        ("v1.35.9", "kubeadm.k8s.io/v1beta3"),
        ("v1.24.0", "kubeadm.k8s.io/v1beta3"),
        ("1.30.1-rc.0", "kubeadm.k8s.io/v1beta3"),
    ],
)
def test_api_version_follows_kinds_switch_at_1_36(version: str, expected: str) -> None:
    assert kubeadm_api_version(version) == expected


@pytest.mark.parametrize("version", ["v1.22.0", "banana", ""])
def test_unsupported_or_unreadable_versions_are_config_errors(version: str) -> None:
    with pytest.raises(ConfigError):
        kubeadm_api_version(version)


def test_parse_version_reads_kind_version_file_format() -> None:
    assert parse_version("v1.37.2\n") == (1, 37, 2)


def test_bootstrap_control_plane_gets_init_cluster_kubelet_and_proxy_docs() -> None:
    rendered = docs(params())
    assert set(rendered) == {
        "ClusterConfiguration",
        "InitConfiguration",
        "KubeletConfiguration",
        "KubeProxyConfiguration",
    }
    cluster = rendered["ClusterConfiguration"]
    assert cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert cluster["kubernetesVersion"] == "v1.37.2"
    assert cluster["clusterName"] == "demo"
    assert cluster["controlPlaneEndpoint"] == "demo-control-plane:6443"
    assert cluster["apiServer"]["certSANs"] == ["localhost", "127.0.0.1"]
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16", "serviceSubnet": "10.96.0.0/16"}
    init = rendered["InitConfiguration"]
    assert init["localAPIEndpoint"] == {"advertiseAddress": "172.18.0.2", "bindPort": 6443}
    assert init["bootstrapTokens"] == [{"token": "abcdef.0123456789abcdef"}]
    assert init["skipPhases"] == ["preflight", "kubelet-finalize"]
    assert cluster["encryptionAlgorithm"] == "ECDSA-P256"
    assert cluster["scheduler"] == {"extraArgs": [{"name": "leader-elect", "value": "false"}]}
    assert init["nodeRegistration"]["criSocket"] == "unix:///run/containerd/containerd.sock"


def test_v1beta4_writes_extra_args_as_name_value_lists() -> None:
    rendered = docs(params())
    kubelet_args = rendered["InitConfiguration"]["nodeRegistration"]["kubeletExtraArgs"]
    assert {"name": "node-ip", "value": "172.18.0.2"} in kubelet_args
    assert {"name": "provider-id", "value": "kind://docker/demo/demo-control-plane"} in kubelet_args
    cm_args = rendered["ClusterConfiguration"]["controllerManager"]["extraArgs"]
    assert cm_args == [
        {"name": "enable-hostpath-provisioner", "value": "true"},
        {"name": "kube-api-qps", "value": "200"},
        {"name": "kube-api-burst", "value": "400"},
        {"name": "leader-elect", "value": "false"},
    ]


def test_v1beta3_writes_extra_args_as_maps() -> None:
    rendered = docs(params(kubernetes_version="v1.35.1"))
    assert rendered["InitConfiguration"]["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    kubelet_args = rendered["InitConfiguration"]["nodeRegistration"]["kubeletExtraArgs"]
    assert kubelet_args["node-ip"] == "172.18.0.2"
    cm_args = rendered["ClusterConfiguration"]["controllerManager"]["extraArgs"]
    assert cm_args == {
        "enable-hostpath-provisioner": "true",
        "kube-api-qps": "200",
        "kube-api-burst": "400",
        "leader-elect": "false",
    }
    assert "encryptionAlgorithm" not in rendered["ClusterConfiguration"]  # v1beta4 only


def test_several_control_planes_keep_leader_election() -> None:
    cluster = docs(params(control_planes=3))["ClusterConfiguration"]
    names = [arg["name"] for arg in cluster["controllerManager"]["extraArgs"]]
    assert "leader-elect" not in names
    assert cluster["scheduler"] == {}


@pytest.mark.parametrize(
    ("version", "cgroup_v1", "expected"),
    [
        ("v1.37.2", True, False),  # present and false: kubelet may run on cgroup v1
        ("v1.35.0", True, False),
        ("v1.34.3", True, None),  # older kubelets do not know the field
        ("v1.37.2", False, None),  # cgroup v2 hosts need nothing
    ],
)
def test_fail_cgroup_v1_only_for_new_kubelets_on_cgroup_v1(
    version: str, cgroup_v1: bool, expected: bool | None
) -> None:
    kubelet = docs(params(kubernetes_version=version, cgroup_v1=cgroup_v1))["KubeletConfiguration"]
    assert kubelet.get("failCgroupV1", None) is expected
    assert kubelet["cgroupDriver"] == "systemd"
    assert kubelet["cgroupRoot"] == "/kubelet"
    assert kubelet["evictionHard"]["nodefs.available"] == "0%"


def test_kube_proxy_leaves_conntrack_alone() -> None:
    proxy = docs(params())["KubeProxyConfiguration"]
    assert proxy["mode"] == "iptables"
    assert proxy["conntrack"] == {"maxPerCore": 0}


def test_worker_gets_only_a_join_configuration() -> None:
    rendered = docs(
        params(node_name="demo-worker", node_ip="172.18.0.3", role="worker", bootstrap=False)
    )
    assert set(rendered) == {"JoinConfiguration"}
    join = rendered["JoinConfiguration"]
    assert join["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": "demo-control-plane:6443",
        "token": "abcdef.0123456789abcdef",
        "unsafeSkipCAVerification": True,
    }
    assert "controlPlane" not in join
    assert {"name": "node-ip", "value": "172.18.0.3"} in join["nodeRegistration"][
        "kubeletExtraArgs"
    ]


def test_secondary_control_plane_join_advertises_its_own_address() -> None:
    rendered = docs(params(node_name="demo-control-plane2", node_ip="172.18.0.4", bootstrap=False))
    local = rendered["JoinConfiguration"]["controlPlane"]["localAPIEndpoint"]
    assert local == {"advertiseAddress": "172.18.0.4", "bindPort": 6443}


def test_bootstrap_tokens_are_random_and_well_formed() -> None:
    first, second = bootstrap_token(), bootstrap_token()
    assert first != second
    for token in (first, second):
        head, tail = token.split(".")
        assert len(head) == 6
        assert len(tail) == 16
        assert token.replace(".", "").isalnum()
        assert token == token.lower()


@pytest.mark.parametrize(
    ("version", "patched"), [("v1.37.2", True), ("v1.32.0", True), ("v1.31.5", False)]
)
def test_coredns_patch_only_where_kubeadm_supports_the_target(version: str, patched: bool) -> None:
    init = docs(params(kubernetes_version=version))["InitConfiguration"]
    assert init.get("patches") == ({"directory": "/kind/patches"} if patched else None)


def test_coredns_patch_only_changes_the_probe_period() -> None:
    patch = yaml.safe_load(COREDNS_PATCH)
    (container,) = patch["spec"]["template"]["spec"]["containers"]
    assert container == {"name": "coredns", "readinessProbe": {"periodSeconds": 1}}
