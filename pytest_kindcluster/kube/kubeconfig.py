"""A private kubeconfig per cluster, and an ApiClient built from it.

Never merged into ``~/.kube/config``: one file per cluster means parallel runs never contend for
kubeconfig's lock file (kind issue 1425), and a test session cannot disturb the user's contexts.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s_client

from pytest_kindcluster.contract import API_SERVER_PORT
from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.runtime.base import NodeDetails


def context_name(cluster: str) -> str:
    """kind's naming, so the file reads the same as one `kind get kubeconfig` would give."""
    return f"kind-{cluster}"


def host_server(details: NodeDetails) -> str:
    """``https://127.0.0.1:<port>``: where the control plane's apiserver is published."""
    binding = details.ports.get(f"{API_SERVER_PORT}/tcp")
    if binding is None:
        raise ConfigError(f"node {details.name} does not publish port {API_SERVER_PORT}")
    host, port = binding
    # A wildcard binding is reachable on loopback, which the serving cert names.
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"https://{host}:{port}"


def rewrite_kubeconfig(admin_conf: str, *, cluster: str, server: str) -> dict[str, Any]:
    """Turn the node's admin.conf into one for the host: renamed entries, host server URL."""
    doc = yaml.safe_load(admin_conf)
    if not isinstance(doc, dict):
        raise ConfigError("admin.conf from the control plane is not a kubeconfig mapping")
    counts = {key: len(doc.get(key) or []) for key in ("clusters", "users", "contexts")}
    if any(count != 1 for count in counts.values()):
        raise ConfigError(f"admin.conf should hold exactly one of each entry, found {counts}")
    name = context_name(cluster)
    entry_cluster, entry_user, entry_context = (
        doc["clusters"][0],
        doc["users"][0],
        doc["contexts"][0],
    )
    entry_cluster["name"] = name
    entry_cluster["cluster"]["server"] = server
    entry_user["name"] = name
    entry_context["name"] = name
    entry_context["context"]["cluster"] = name
    entry_context["context"]["user"] = name
    doc["current-context"] = name
    return doc


def write_private(path: Path, kubeconfig: dict[str, Any]) -> Path:
    """Write the kubeconfig with mode 0600 (in a 0700 directory if we create it), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kubeconfig-")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(kubeconfig, handle, sort_keys=False)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    path.chmod(0o600)
    return path


def api_client(path: Path) -> k8s_client.ApiClient:
    """An ApiClient for that file, leaving the library's global default Configuration alone.

    ``load_kube_config`` would install a process-wide default, and the library's loaders cache
    the certificate files they write by content, for the life of the process, even after the
    files are deleted. So the Configuration is filled here: the certificates go, 0600, next to
    the kubeconfig, sharing its privacy and its lifetime.
    """
    doc = yaml.safe_load(path.read_text())
    current = next(c for c in doc["contexts"] if c["name"] == doc["current-context"])["context"]
    cluster = next(c for c in doc["clusters"] if c["name"] == current["cluster"])["cluster"]
    user = next(u for u in doc["users"] if u["name"] == current["user"])["user"]
    certs = path.parent / "certs"
    certs.mkdir(mode=0o700, exist_ok=True)

    def materialise(entry: dict[str, Any], key: str, filename: str) -> str:
        if f"{key}-data" not in entry:
            raise ConfigError(f"{path}: expected {key}-data (kubeadm's admin.conf has it)")
        target = certs / filename
        target.touch(mode=0o600)
        target.write_bytes(base64.b64decode(entry[f"{key}-data"]))
        return str(target)

    configuration = k8s_client.Configuration()
    configuration.host = cluster["server"]
    configuration.ssl_ca_cert = materialise(cluster, "certificate-authority", "ca.crt")
    configuration.cert_file = materialise(user, "client-certificate", "client.crt")
    configuration.key_file = materialise(user, "client-key", "client.key")
    return k8s_client.ApiClient(configuration)
