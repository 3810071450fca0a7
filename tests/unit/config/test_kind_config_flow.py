"""How a kind cluster config shapes the create flow and each node's kubeadm documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_kindcluster.config import parse_config
from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.kube.portforward import namespace_from_args
from pytest_kindcluster.provision import ClusterSpec, build_steps
from pytest_kindcluster.provision.kubeadm import KubeadmInit
from pytest_kindcluster.provision.kubeadm_config import KubeadmParams, kubeadm_documents
from pytest_kindcluster.provision.kubeadm_kind import customise

HEADER = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"


def spec(body: str) -> ClusterSpec:
    return ClusterSpec("c", "img", config=parse_config(HEADER + body))


def test_ha_flow_configures_the_load_balancer_and_joins_control_planes_then_workers() -> None:
    s = spec("nodes: [{role: control-plane}, {role: control-plane}, {role: worker}]\n")
    assert [step.name for step in build_steps(s)] == [
        "preflight", "network", "nodes", "loadbalancer", "kubeadm-config", "kubeadm-init",
        "join-control-planes", "join", "kubeconfig", "ready",
    ]  # fmt: skip
    assert s.load_balancer_name == "c-external-load-balancer"
    assert s.control_plane_endpoint == "c-external-load-balancer:6443"
    assert [name for name, _ in s.node_plan()] == [
        "c-control-plane",
        "c-control-plane2",
        "c-worker",
    ]


def test_ha_without_workers_untaints_after_every_control_plane_joined() -> None:
    names = [step.name for step in build_steps(spec("nodes: [{}, {}, {}]\n"))]
    assert names[-4:] == ["join-control-planes", "untaint", "kubeconfig", "ready"]


def test_no_cni_and_containerd_patches_change_the_flow() -> None:
    s = spec(
        "networking: {disableDefaultCNI: true}\n"
        'containerdConfigPatches: ["[plugins.x]\\ny = 1\\n"]\n'
    )
    assert [step.name for step in build_steps(s)] == [
        "preflight", "network", "nodes", "containerd-config", "kubeadm-config", "kubeadm-init",
        "untaint", "kubeconfig", "ready",
    ]  # fmt: skip
    init = next(step for step in build_steps(s) if isinstance(step, KubeadmInit))
    assert [step.name for step in init.early] == ["storage"]  # no CNI, as asked
    assert s.control_plane_endpoint == "c-control-plane:6443"


def test_config_and_workers_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="give the workers in the kind cluster config"):
        ClusterSpec("c", "img", workers=2, config=parse_config(HEADER))


def test_workers_alone_still_make_the_nodes() -> None:
    assert ClusterSpec("c", "img", workers=2).worker_names() == ["c-worker", "c-worker2"]


def docs(body: str, *, bootstrap: bool = True, node: int = 0) -> dict[str, Any]:
    config = parse_config(HEADER + body)
    params = KubeadmParams(
        cluster="c",
        kubernetes_version="v1.37.2",
        node_name="c-control-plane",
        node_ip="10.0.0.2",
        role="control-plane",
        bootstrap=bootstrap,
        token="abcdef.0123456789abcdef",
        endpoint="c-external-load-balancer:6443",
    )
    out = customise(kubeadm_documents(params), config, config.nodes[node])
    return {d["kind"]: d for d in out}


def test_gates_runtime_config_subnets_and_labels_land_where_kind_puts_them() -> None:
    d = docs(
        "featureGates: {A: true, B: false}\nruntimeConfig: {api/alpha: 'false'}\n"
        "networking: {podSubnet: 10.1.0.0/16, serviceSubnet: 10.2.0.0/16,"
        " apiServerAddress: 127.0.0.2}\n"
        "nodes: [{labels: {tier: web}}]\n"
    )
    cluster = d["ClusterConfiguration"]
    assert cluster["controlPlaneEndpoint"] == "c-external-load-balancer:6443"
    assert cluster["networking"] == {"podSubnet": "10.1.0.0/16", "serviceSubnet": "10.2.0.0/16"}
    assert "127.0.0.2" in cluster["apiServer"]["certSANs"]
    assert {"name": "feature-gates", "value": "A=true,B=false"} in cluster["apiServer"]["extraArgs"]
    assert {"name": "runtime-config", "value": "api/alpha=false"} in cluster["apiServer"][
        "extraArgs"
    ]
    for component in ("controllerManager", "scheduler"):
        assert {"name": "feature-gates", "value": "A=true,B=false"} in cluster[component][
            "extraArgs"
        ]
    assert d["KubeletConfiguration"]["featureGates"] == {"A": True, "B": False}
    assert d["KubeProxyConfiguration"]["featureGates"] == {"A": True, "B": False}
    kubelet_args = d["InitConfiguration"]["nodeRegistration"]["kubeletExtraArgs"]
    assert {"name": "node-labels", "value": "tier=web"} in kubelet_args


def test_kube_proxy_none_drops_its_config_and_its_addon() -> None:
    d = docs("networking: {kubeProxyMode: none}\n")
    assert "KubeProxyConfiguration" not in d
    assert "addon/kube-proxy" in d["InitConfiguration"]["skipPhases"]


def test_nftables_mode_is_liberal_about_tcp_windows() -> None:
    proxy = docs("networking: {kubeProxyMode: nftables}\n")["KubeProxyConfiguration"]
    assert proxy["mode"] == "nftables"
    assert proxy["conntrack"] == {"maxPerCore": 0, "tcpBeLiberal": True}


def test_cluster_patches_apply_before_node_patches() -> None:
    d = docs(
        "kubeadmConfigPatches:\n- |\n  kind: ClusterConfiguration\n  x: cluster\n"
        "nodes:\n- kubeadmConfigPatches:\n  - |\n    kind: ClusterConfiguration\n    x: node\n"
    )
    assert d["ClusterConfiguration"]["x"] == "node"


def test_joining_nodes_get_their_labels_in_the_join_configuration() -> None:
    d = docs("nodes: [{labels: {a: b}}]\n", bootstrap=False)
    join = d["JoinConfiguration"]
    assert {"name": "node-labels", "value": "a=b"} in join["nodeRegistration"]["kubeletExtraArgs"]
    assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == (
        "c-external-load-balancer:6443"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [((), "default"), (("-n", "x"), "x"), (("--namespace", "y"), "y"), (("--namespace=z",), "z")],
)
def test_port_forward_takes_kubectls_namespace_flags(args: tuple[str, ...], expected: str) -> None:
    assert namespace_from_args(args) == expected


def test_port_forward_refuses_other_kubectl_flags() -> None:
    with pytest.raises(ConfigError, match="unsupported kubectl argument"):
        namespace_from_args(("--address", "0.0.0.0"))


def test_bad_kind_config_is_a_usage_error_before_anything_runs(pytester: pytest.Pytester) -> None:
    bad = pytester.path / "kind.yaml"
    bad.write_text(HEADER + "nodes: [{role: master}]\nnetworking: {kubeProxyMode: ipvs}\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(f"--kind-config={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*'ipvs' is not supported*", "*nodes[[]0[]].role: must be 'control-plane' or 'worker'*"]
    )


def test_bad_marker_config_is_a_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.kind_cluster(config="missing.yaml")
        def test_x(kind_cluster):
            pass
        """
    )
    result = pytester.runpytest()
    # Raised while collecting: pytest reports a collection error and stops before any test.
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.kind_cluster(config=...)*cannot read*missing.yaml*"]
    )
