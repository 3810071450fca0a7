"""Credentials never reach logs, errors or exported files."""

from __future__ import annotations

import base64
import logging

import pytest

from pytest_kindcluster.errors import CommandFailed
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
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert MASK in cleaned


def test_ordinary_output_is_untouched() -> None:
    text = (
        "kubectl get nodes\nNAME  STATUS  ROLES\ndemo-control-plane  Ready  control-plane\n"
        "client-certificate-data: LS0tCERT\nimage: registry.k8s.io/pause:3.10\n"
    )
    assert redact(text) == text


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
