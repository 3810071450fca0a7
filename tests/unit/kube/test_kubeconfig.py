"""The private kubeconfig: rewrite, file mode, and an ApiClient that leaves globals alone."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from kubernetes import client as k8s_client

from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.kube.kubeconfig import (
    api_client,
    host_server,
    rewrite_kubeconfig,
    write_private,
)
from pytest_kindcluster.runtime.base import NodeDetails
from pytest_kindcluster.runtime.fake import admin_conf


def details(ports: dict[str, tuple[str, int]]) -> NodeDetails:
    return NodeDetails(
        "demo-control-plane", "control-plane", "running", "img", "172.18.0.2", {}, ports
    )


def test_rewrite_renames_everything_and_points_at_the_host_port() -> None:
    doc = rewrite_kubeconfig(admin_conf(), cluster="demo", server="https://127.0.0.1:40000")
    assert doc["current-context"] == "kind-demo"
    assert doc["clusters"][0]["name"] == "kind-demo"
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:40000"
    assert doc["users"][0]["name"] == "kind-demo"
    assert doc["contexts"][0] == {
        "name": "kind-demo",
        "context": {"cluster": "kind-demo", "user": "kind-demo"},
    }
    # credentials are carried over untouched
    original = yaml.safe_load(admin_conf())
    assert doc["users"][0]["user"] == original["users"][0]["user"]


def test_rewrite_refuses_a_kubeconfig_with_several_entries() -> None:
    doc = yaml.safe_load(admin_conf())
    doc["clusters"].append(doc["clusters"][0])
    with pytest.raises(ConfigError, match="exactly one"):
        rewrite_kubeconfig(yaml.safe_dump(doc), cluster="demo", server="https://x")


@pytest.mark.parametrize(
    ("binding", "server"),
    [
        (("127.0.0.1", 40000), "https://127.0.0.1:40000"),
        (("0.0.0.0", 40001), "https://127.0.0.1:40001"),
        (("", 40002), "https://127.0.0.1:40002"),
    ],
)
def test_host_server_uses_the_published_loopback_port(
    binding: tuple[str, int], server: str
) -> None:
    assert host_server(details({"6443/tcp": binding})) == server


def test_host_server_without_a_published_port_is_an_error() -> None:
    with pytest.raises(ConfigError):
        host_server(details({}))


def test_written_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "kubeconfig"
    doc = rewrite_kubeconfig(admin_conf(), cluster="demo", server="https://127.0.0.1:1")
    write_private(path, doc)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert yaml.safe_load(path.read_text()) == doc
    assert [p.name for p in path.parent.iterdir()] == ["kubeconfig"]  # no temp file left


def test_api_client_does_not_touch_the_global_default_configuration(tmp_path: Path) -> None:
    before = k8s_client.Configuration.get_default_copy()
    path = write_private(
        tmp_path / "kubeconfig",
        rewrite_kubeconfig(admin_conf(), cluster="demo", server="https://127.0.0.1:40000"),
    )
    api = api_client(path)
    try:
        assert api.configuration.host == "https://127.0.0.1:40000"
        after = k8s_client.Configuration.get_default_copy()
        assert after.host == before.host
        assert after.cert_file == before.cert_file
        # The library's loader wrote the inline certificates, privately, into certs/.
        certs = path.parent / "certs"
        assert stat.S_IMODE(certs.stat().st_mode) == 0o700
        for name in (api.configuration.ssl_ca_cert, api.configuration.cert_file):
            cert = Path(name)
            assert cert.parent == certs
            assert cert.read_bytes() == b"not a real certificate"
            assert stat.S_IMODE(cert.stat().st_mode) == 0o600
    finally:
        api.close()  # type: ignore[no-untyped-call]  # untyped in the kubernetes client
