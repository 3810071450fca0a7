"""kind cluster YAML: a table of valid and invalid files, each invalid one with its messages.

Each ``testdata/config/invalid-*.yaml`` states what it must produce in ``# expect:`` lines (and
optionally ``# problems: N``); the test fails if any expected message is missing, so a file that
starts failing for another reason is caught too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_kindcluster.config import (
    ClusterConfig,
    Mount,
    PortMapping,
    default_config,
    load_config,
    parse_config,
)
from pytest_kindcluster.errors import ConfigError

TESTDATA = Path(__file__).parent / "testdata" / "config"
VALID = sorted(TESTDATA.glob("valid-*.yaml"))
INVALID = sorted(TESTDATA.glob("invalid-*.yaml"))
HEADER = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"


def expectations(path: Path) -> tuple[list[str], int | None]:
    text = path.read_text()
    expected = [m.group(1) for m in re.finditer(r"^# expect: (.*)$", text, re.MULTILINE)]
    count = re.search(r"^# problems: (\d+)$", text, re.MULTILINE)
    return expected, int(count.group(1)) if count else None


def test_the_tables_are_not_empty() -> None:
    assert len(VALID) >= 5
    assert len(INVALID) >= 15
    for path in INVALID:
        assert expectations(path)[0], f"{path.name} states no expected message"


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_files_load(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config, ClusterConfig)
    assert config.control_planes
    assert config.source == path


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_files_report_every_problem(path: Path) -> None:
    expected, count = expectations(path)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    missing = [e for e in expected if e not in message]
    assert not missing, f"{path.name}: missing {missing} in:\n{message}"
    if count is not None:
        assert message.count("\n  - ") == count, message


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="kind: must be 'Cluster'"):
        parse_config("kind: Pod\napiVersion: kind.x-k8s.io/v1alpha4\n")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read kind cluster config"):
        load_config(tmp_path / "absent.yaml")


def test_minimal_file_gets_kinds_defaults() -> None:
    config = load_config(TESTDATA / "valid-minimal.yaml")
    assert config == default_config()
    node = config.nodes[0]
    assert (node.role, node.image, dict(node.labels)) == ("control-plane", None, {})
    net = config.networking
    assert (net.pod_subnet, net.service_subnet) == ("10.244.0.0/16", "10.96.0.0/16")
    assert (net.api_server_address, net.api_server_port) == ("127.0.0.1", 0)
    assert (net.kube_proxy_mode, net.disable_default_cni) == ("iptables", False)


def test_many_fields_decode_into_the_model() -> None:
    config = load_config(TESTDATA / "valid-many-fields.yaml")
    assert config.name == "many-fields"
    assert dict(config.feature_gates) == {
        "InPlacePodVerticalScaling": True,
        "SomeAlphaThing": False,
    }
    assert dict(config.runtime_config) == {"api/alpha": "false"}
    net = config.networking
    assert (net.api_server_port, net.kube_proxy_mode, net.disable_default_cni) == (
        6443,
        "nftables",
        True,
    )
    control_plane, worker = config.nodes
    assert control_plane.image == "pytest-kindcluster/node:v1.37.2"
    assert dict(control_plane.labels) == {"tier": "frontend", "node.kubernetes.io/pool": "blue"}
    # a relative hostPath is taken from the file's directory, not the current directory
    assert control_plane.extra_mounts == (
        Mount(TESTDATA.resolve(), "/testdata", read_only=True, propagation="HostToContainer"),
    )
    assert control_plane.extra_port_mappings == (
        PortMapping(30080, 0, "127.0.0.1", "TCP"),
        PortMapping(30081, 0, "0.0.0.0", "UDP"),
    )
    assert worker.role == "worker"
    assert len(worker.kubeadm_config_patches) == 1
    patch = config.kubeadm_config_patches_json6902[0]
    assert patch.api_version == "kubeadm.k8s.io/v1beta4"
    assert len(config.containerd_config_patches_json6902) == 1


def test_node_names_follow_kind() -> None:
    config = load_config(TESTDATA / "valid-ha.yaml")
    assert config.high_availability
    assert [name for name, _ in config.node_names("c")] == [
        "c-control-plane",
        "c-control-plane2",
        "c-control-plane3",
        "c-worker",
        "c-worker2",
    ]


def test_ports_default_to_loopback_and_a_free_host_port() -> None:
    config = parse_config(
        HEADER + "nodes:\n- role: control-plane\n  extraPortMappings:\n  - containerPort: 80\n"
        "  - containerPort: 81\n    hostPort: -1\n"
    )
    assert [(m.host_port, m.listen_address) for m in config.nodes[0].extra_port_mappings] == [
        (0, "127.0.0.1"),
        (0, "127.0.0.1"),
    ]


def test_config_is_frozen() -> None:
    config = default_config()
    with pytest.raises(AttributeError):
        config.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.nodes[0].labels["a"] = "b"  # type: ignore[index]


def test_problems_from_load_and_cross_checks_come_together() -> None:
    text = HEADER + ("nodes:\n- role: worker\n  bogus: 1\nnetworking:\n  podSubnet: 10.96.0.0/12\n")
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert "(3 problems)" in message
    assert "nodes[0].bogus: unknown field" in message
    assert "at least one control-plane node" in message
    assert "overlap" in message
