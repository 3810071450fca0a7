"""One test on the session's cluster; run by the crash-safety and bad-input tests."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_kindcluster import KindCluster


def test_cluster_is_usable(kind_cluster: KindCluster) -> None:
    assert kind_cluster.kubectl("get", "nodes", "-o", "name").startswith("node/")
    record = os.environ.get("KIND_RECORD_KUBECONFIG")
    if record:
        # For the "two runs at once" test: which kubeconfig and apiserver port this run used.
        port = kind_cluster.nodes[0].details().ports["6443/tcp"][1]
        Path(record).write_text(f"{kind_cluster.kubeconfig_path}\n{port}\n")
