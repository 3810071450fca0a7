"""Any user's kubeconfig: cloud-style names, tokens, exec plugins, file paths, proxies.

The client comes from the kubernetes library's own loader; these pin what the plugin adds
around it: the context it picks, where the loader may write, and the minified copy for kubectl.
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.kube.kubeconfig import (
    api_client,
    check_context,
    minify,
)

GKE = "gke_my-project_europe-west1-b_prod"
EKS = "arn:aws:eks:eu-west-1:123456789012:cluster/x"
EXEC_TOKEN_SCRIPT = """#!/bin/sh
echo '{"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
 "status": {"token": "token-from-exec"}}'
"""


def cloud_kubeconfig(root: Path) -> Path:
    """Two contexts named the way GKE and EKS name them; a token file, an exec plugin."""
    (root / "ca.crt").write_text("a CA\n")
    (root / "token").write_text("token-from-file\n")  # as `kubectl create token > token`
    (root / "bin").mkdir()
    (root / "bin" / "get-token").write_text(EXEC_TOKEN_SCRIPT)
    (root / "bin" / "get-token").chmod(0o755)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": GKE,
                "cluster": {
                    "server": "https://127.0.0.1:1",
                    "certificate-authority": "ca.crt",
                    "proxy-url": "http://proxy.invalid:3128",
                },
            },
            {
                "name": EKS,
                "cluster": {
                    "server": "https://127.0.0.1:2",
                    "certificate-authority-data": base64.b64encode(b"inline CA").decode(),
                },
            },
        ],
        "users": [
            {"name": "token-user", "user": {"tokenFile": "token"}},
            {
                "name": "exec-user",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "./bin/get-token",
                    }
                },
            },
        ],
        "contexts": [
            {"name": GKE, "context": {"cluster": GKE, "user": "token-user", "namespace": "a"}},
            {"name": EKS, "context": {"cluster": EKS, "user": "exec-user"}},
        ],
        "current-context": EKS,
    }
    path = root / "config"
    path.write_text(yaml.safe_dump(doc))
    return path


def bearer(api: Any) -> str:
    # auth_settings() is where both client generations put the header (the api_key key differs).
    return str(api.configuration.auth_settings()["BearerToken"]["value"])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def test_a_token_file_context_with_a_proxy_writes_nothing_next_to_the_kubeconfig(
    home: Path, tmp_path: Path
) -> None:
    path = cloud_kubeconfig(home)
    before = sorted(p.name for p in home.rglob("*"))
    api = api_client(path, context=GKE, temp_dir=tmp_path / "private")
    try:
        assert api.configuration.host == "https://127.0.0.1:1"
        assert bearer(api) == "Bearer token-from-file"
        # Also after the loader's refresh hook, which runs before every request (and re-installs
        # itself each time: the third request must still be trimmed).
        for _ in range(3):
            auth = api.configuration.auth_settings()["BearerToken"]
            assert auth["value"] == "Bearer token-from-file"
        assert api.configuration.ssl_ca_cert == str(home / "ca.crt")
        assert api.configuration.proxy == "http://proxy.invalid:3128"
    finally:
        api.close()  # type: ignore[no-untyped-call]
    assert sorted(p.name for p in home.rglob("*")) == before


def test_an_exec_plugin_context_with_inline_data_writes_only_into_the_private_dir(
    home: Path, tmp_path: Path
) -> None:
    path = cloud_kubeconfig(home)
    before = sorted(p.name for p in home.rglob("*"))
    private = tmp_path / "private"
    api = api_client(path, temp_dir=private)  # the current context: EKS's
    try:
        assert api.configuration.host == "https://127.0.0.1:2"
        assert bearer(api) == "Bearer token-from-exec"
        ca = Path(api.configuration.ssl_ca_cert)
        assert ca.parent == private
        assert ca.read_bytes() == b"inline CA"
        assert stat.S_IMODE(ca.stat().st_mode) == 0o600
    finally:
        api.close()  # type: ignore[no-untyped-call]
    assert sorted(p.name for p in home.rglob("*")) == before


def test_each_client_has_its_own_files_and_the_loaders_cache_is_left_alone(
    home: Path, tmp_path: Path
) -> None:
    from kubernetes.config import kube_config  # noqa: PLC0415 - the cache under test

    path = cloud_kubeconfig(home)
    cache_before = dict(kube_config._temp_files)
    first = api_client(path, temp_dir=tmp_path / "first")
    second = api_client(path, temp_dir=tmp_path / "second")  # same content, another directory
    try:
        assert Path(first.configuration.ssl_ca_cert).parent == tmp_path / "first"
        assert Path(second.configuration.ssl_ca_cert).parent == tmp_path / "second"
        assert kube_config._temp_files == cache_before
    finally:
        first.close()  # type: ignore[no-untyped-call]
        second.close()  # type: ignore[no-untyped-call]


def test_a_failing_exec_plugin_is_a_config_error_naming_file_and_context(home: Path) -> None:
    path = cloud_kubeconfig(home)
    (home / "bin" / "get-token").write_text("#!/bin/sh\necho expired >&2\nexit 1\n")
    with pytest.raises(ConfigError, match=f"cannot use kubeconfig {path}.*expired"):
        api_client(path, temp_dir=home.parent / "private")


def test_any_context_name_is_accepted_and_a_missing_one_lists_the_choices(home: Path) -> None:
    path = cloud_kubeconfig(home)
    assert check_context(path, None) == EKS
    assert check_context(path, GKE) == GKE
    with pytest.raises(ConfigError) as info:
        check_context(path, "kind-nope")
    assert (
        f"has no context 'kind-nope'; pick one with --kind-context (its contexts: {GKE}, {EKS})"
        in (str(info.value))
    )


def test_minify_keeps_one_context_with_absolute_paths_and_names_as_they_are(
    home: Path,
) -> None:
    path = cloud_kubeconfig(home)
    gke = minify(path, GKE)
    assert gke["current-context"] == GKE
    assert [c["name"] for c in gke["clusters"]] == [GKE]
    assert gke["clusters"][0]["cluster"]["certificate-authority"] == str(home / "ca.crt")
    assert gke["users"][0]["user"]["tokenFile"] == str(home / "token")
    assert gke["contexts"][0]["context"]["namespace"] == "a"
    eks = minify(path, EKS)
    assert eks["users"][0]["user"]["exec"]["command"] == str(home / "bin" / "get-token")
    assert "certificate-authority-data" in eks["clusters"][0]["cluster"]
    # The user's file is unchanged: minify works on a copy.
    assert yaml.safe_load(path.read_text())["users"][1]["user"]["exec"]["command"] == (
        "./bin/get-token"
    )
