"""Keep credentials out of logs, error messages and exported log files.

Commands run in the nodes handle secrets as a matter of course: ``cat admin.conf`` returns the
admin's client key, the kubeadm config holds the bootstrap token, and an HA join streams the
cluster's CA keys through ``tar``. Their output is logged at DEBUG, attached to errors, and
exported for CI artifacts, which are often public. Everything that leaves the process as text
goes through :func:`redact` first.
"""

from __future__ import annotations

import base64
import re

MASK = "<redacted>"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys (RSA, EC, PKCS#8), whole blocks.
    (
        re.compile(
            r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.S
        ),
        f"-----{MASK} PRIVATE KEY-----",
    ),
    # kubeconfig and kubeadm fields whose values are secrets.
    (
        re.compile(
            r"(?im)^(\s*-?\s*(?:client-key-data|token|password|certificateKey|"
            r"certificate-key)\s*:\s*)(\S.*)$"
        ),
        rf"\1{MASK}",
    ),
    # The same keys in JSON (kubectl -o json, docker inspect).
    (
        re.compile(r'("(?:client-key-data|token|password|certificateKey)"\s*:\s*)"[^"]*"'),
        rf'\1"{MASK}"',
    ),
    # Command-line forms: --token abc, --token=abc, --certificate-key ..., and kubeadm join's
    # discovery flags (what `kubeadm token create --print-join-command` prints).
    (
        re.compile(
            r"(--(?:token|certificate-key|password|discovery-token|tls-bootstrap-token|"
            r"discovery-token-ca-cert-hash)[= ])(\S+)"
        ),
        rf"\1{MASK}",
    ),
    # kubeadm init's upload-certs phase prints the key on the line after its label.
    (re.compile(r"(?i)(certificate key:\s*)([0-9a-f]{64})"), rf"\1{MASK}"),
    # Authorization headers.
    (re.compile(r"(?i)(authorization:\s*bearer\s+)(\S+)"), rf"\1{MASK}"),
    (re.compile(r"(?i)(\bbearer\s+)([A-Za-z0-9._~+/=-]{16,})"), rf"\1{MASK}"),
    # A kubeadm bootstrap token anywhere else: [a-z0-9]{6}.[a-z0-9]{16}.
    (re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b"), MASK),
)


# A base64-encoded PEM block (kubeconfig's client-key-data, a Secret's data) starts with the
# encoding of "-----BEGIN"; which kind of block it is shows once decoded.
_BASE64_PEM = re.compile(r"LS0tLS1CRUdJTi[A-Za-z0-9+/]*={0,2}")


def _base64_private_key(match: re.Match[str]) -> str:
    head = match.group(0)[:96]
    try:
        decoded = base64.b64decode(head[: len(head) // 4 * 4]).decode(errors="replace")
    except ValueError:
        return match.group(0)
    return MASK if "PRIVATE KEY" in decoded else match.group(0)


def redact(text: str) -> str:
    """``text`` with private keys, tokens and passwords replaced by a marker."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _BASE64_PEM.sub(_base64_private_key, text)


def printable(raw: bytes, *, limit: int = 64 * 1024) -> str:
    """Command output fit for a log line: redacted text, or a size note for binary data.

    A ``tar`` of certificates or an image archive is not text, and decoding it would put key
    material into the log byte for byte.
    """
    sample = raw[:4096]
    if b"\x00" in sample:
        return f"<{len(raw)} bytes of binary output>"
    text = raw[:limit].decode(errors="replace")
    more = f"\n... {len(raw) - limit} more bytes" if len(raw) > limit else ""
    return redact(text) + more
