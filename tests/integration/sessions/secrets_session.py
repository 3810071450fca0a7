"""Records the cluster's real credentials, then fails, so its logs are exported.

test_bad_input.py then greps the whole output and the exported logs for those credentials.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import yaml

from pytest_kindcluster import KindCluster


def test_record_credentials_and_access(kind_cluster: KindCluster) -> None:
    kubeconfig = yaml.safe_load(kind_cluster.kubeconfig_path.read_text())
    node = kind_cluster.nodes[0]
    kubeadm = node.exec("cat", "/kind/kubeadm.conf").stdout  # logged at DEBUG: must be redacted
    node.exec("cat", "/etc/kubernetes/admin.conf")  # the admin key, through the same log
    token = re.search(r"token: ([a-z0-9]{6}\.[a-z0-9]{16})", kubeadm)
    assert token is not None
    secrets = {
        "token": token.group(1),
        "client_key_data": kubeconfig["users"][0]["user"]["client-key-data"],
        "kubeconfig_mode": stat.S_IMODE(kind_cluster.kubeconfig_path.stat().st_mode),
        "kubeconfig_dir_mode": stat.S_IMODE(kind_cluster.kubeconfig_path.parent.stat().st_mode),
        "ports": {p: list(b) for p, b in node.details().ports.items()},
    }
    Path(os.environ["KIND_SECRETS_FILE"]).write_text(json.dumps(secrets))


def test_fails_so_logs_are_exported(kind_cluster: KindCluster) -> None:
    raise AssertionError("deliberate: the session must export its cluster's logs")
