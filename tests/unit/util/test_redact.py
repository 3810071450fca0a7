"""Credentials never reach logs, errors or exported files."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.errors import CommandFailed
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.runtime.base import Node
from pytest_kindcluster.runtime.fake import FakeRuntime
from pytest_kindcluster.util.redact import MASK, printable, redact

KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretkeymaterial\n"
    "-----END RSA PRIVATE KEY-----"
)
KEY_DATA = base64.b64encode(KEY.encode()).decode()
TOKEN = "q1w2e3.r4t5y6u7i8o9p0a1"
ADMIN_CONF = f"""\
users:
- name: kubernetes-admin
  user:
    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t
    client-key-data: {KEY_DATA}
"""
CERT_KEY = "e6a2eb8581237ab72a4f494f30285ec12a9694d750b9785706a83bfcbbbd2204"
CA_HASH = "sha256:1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b"
# What `kubeadm init --v=6` prints on a control plane that uploads its certificates.
KUBEADM_INIT_OUTPUT = f"""\
[bootstrap-token] Using token: {TOKEN}
[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace
[upload-certs] Using certificate key:
{CERT_KEY}
You can now join any number of control-plane nodes by running:
  kubeadm join c-external-load-balancer:6443 --token {TOKEN} \\
\t--discovery-token-ca-cert-hash {CA_HASH} \\
\t--control-plane --certificate-key {CERT_KEY}
"""
KUBEADM_CONF = (
    f"bootstrapTokens:\n- token: {TOKEN}\ndiscovery:\n  bootstrapToken:\n    token: {TOKEN}\n"
)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (ADMIN_CONF, KEY_DATA),
        (KUBEADM_CONF, TOKEN),
        (f"before\n{KEY}\nafter", "secretkeymaterial"),
        (f"kubeadm join x:6443 --token {TOKEN} --discovery-token-unsafe-skip", TOKEN),
        (f"kubeadm join --token={TOKEN}", TOKEN),
        ("--certificate-key 0123456789abcdef0123", "0123456789abcdef0123"),
        ("Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6Ij", "eyJhbGciOiJSUzI1NiIsImtpZCI6Ij"),
        ('{"token": "sa-token-value", "kind": "Secret"}', "sa-token-value"),
        (f"I1125 joining with {TOKEN} now", TOKEN),
        (f"kubeadm join x:6443 --discovery-token-ca-cert-hash {CA_HASH}", CA_HASH),
        (f"kubeadm join x:6443 --discovery-token={TOKEN}", TOKEN),
        ("kubeadm join x:6443 --tls-bootstrap-token secret-value", "secret-value"),
        ("[upload-certs] Using certificate key:\n" + CERT_KEY + "\n", CERT_KEY),
        (f'{{"data": {{"tls.key": "{KEY_DATA}"}}}}', KEY_DATA[20:60]),
        (f"key material {KEY_DATA} inline", KEY_DATA[20:60]),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert MASK in cleaned


def test_ordinary_output_is_untouched() -> None:
    certificate = base64.b64encode(
        b"-----BEGIN CERTIFICATE-----\nMIIC/jCCAeagAwIBAgIBADANBgkqhkiG9w0BAQsFADAVMRMw\n"
    ).decode()
    text = (
        "kubectl get nodes\nNAME  STATUS  ROLES\ndemo-control-plane  Ready  control-plane\n"
        "client-certificate-data: LS0tCERT\nimage: registry.k8s.io/pause:3.10\n"
        f'"certificate-authority-data": "{certificate}"\n'
        f"image id sha256:{CERT_KEY}\n"  # a digest is no secret, even with a key's length
    )
    assert redact(text) == text


@pytest.mark.parametrize("workers", [0, 2])
def test_every_log_line_of_a_create_is_redacted(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workers: int
) -> None:
    monkeypatch.setattr(readiness, "wait_ready", lambda api, **kwargs: {})
    fake = FakeRuntime()
    fake.reply(["kubeadm", "init"], KUBEADM_INIT_OUTPUT)
    fake.reply(
        ["kubeadm", "join"], f"[discovery] Using token: {TOKEN}\n--certificate-key {CERT_KEY}"
    )
    cluster = KindCluster(
        "demo", workers=workers, runtime=fake, images=fake, kubeconfig=tmp_path / "kubeconfig"
    )
    with caplog.at_level(logging.DEBUG):
        cluster.create().delete()
    assert "kubeadm init on demo-control-plane" in caplog.text  # the output was logged...
    for secret in (TOKEN, CERT_KEY, CA_HASH, KEY_DATA):
        assert secret not in caplog.text  # ... without its secrets


def test_binary_output_is_summarised_not_decoded() -> None:
    assert printable(b"ustar\x00" + KEY.encode()) == f"<{6 + len(KEY)} bytes of binary output>"
    assert printable(ADMIN_CONF.encode()).count(MASK) == 1
    assert printable(b"x" * 10, limit=4) == "xxxx\n... 6 more bytes"


def test_exec_debug_log_and_command_errors_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeRuntime()
    fake.containers.clear()
    fake.fail(["kubeadm", "join"], output=f"failed to join with token {TOKEN}\n{KEY}")
    node = Node("n1", "worker", fake)
    with caplog.at_level(logging.DEBUG), pytest.raises(CommandFailed) as info:
        node.exec("kubeadm", "join", "--token", TOKEN)
    for text in (str(info.value), info.value.output, caplog.text):
        assert TOKEN not in text
        assert "secretkeymaterial" not in text
    assert "kubeadm join --token <redacted>" in str(info.value)
