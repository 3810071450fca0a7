"""A host as fresh machines have it: no /lib/modules (a kernel with no loadable modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from pytest_kindcluster import KindCluster
from pytest_kindcluster.runtime.docker.runtime import DockerRuntime
from tests.support import unique

pytestmark = pytest.mark.integration


def test_a_host_without_lib_modules_gets_a_ready_cluster(
    tmp_path: Path, node_image: str, leftovers: Any, docker_client: docker.DockerClient
) -> None:
    # The host-path probe looks at an empty root, so the host lacks /lib/modules whatever this
    # machine has; before the fix, the Engine API refused the node ("bind source path does not
    # exist: /lib/modules") before any container existed.
    empty_root = tmp_path / "host"
    empty_root.mkdir()
    engine = DockerRuntime(host_root=empty_root)
    name = unique("it-nomodules")
    with KindCluster(name, image=node_image, runtime=engine, images=engine) as cluster:
        mounts = docker_client.api.inspect_container(f"{name}-control-plane")["Mounts"]
        assert "/lib/modules" not in {m["Destination"] for m in mounts}
        assert "Running" in cluster.kubectl(
            "get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "--no-headers"
        )
    assert leftovers(name) == {"containers": [], "volumes": []}
