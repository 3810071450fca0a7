"""Existing-cluster mode (``--kind-kubeconfig``): the same fixtures on a cluster made elsewhere.

Nothing is created or deleted: ``create()`` only connects and checks readiness, and ``close()``
only disconnects. What needs the node containers (loading images, kubectl inside a node, log
export) cannot work on nodes that may be remote, so it fails with a clear error instead.
"""

from __future__ import annotations

import os
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.errors import ConfigError, KindClusterError
from pytest_kindcluster.kube import kubeconfig as kubeconfigs
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.kube.portforward import namespace_from_args, port_forward
from pytest_kindcluster.runtime.base import Node
from pytest_kindcluster.util.progress import LogProgress, Progress


class ExistingClusterError(KindClusterError):
    """An operation that needs the cluster's node containers, refused in existing-cluster mode."""


def cluster_name(path: Path) -> str:
    """The cluster's name from the kubeconfig's current context (``kind-`` prefix dropped)."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
    current = doc.get("current-context") or ""
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or []}
    cluster = str(contexts.get(current, {}).get("cluster") or current or "existing")
    return cluster.removeprefix("kind-")


class ExistingCluster(KindCluster):
    """A cluster this process did not make and must not change; see the module docstring."""

    def __init__(
        self, kubeconfig: Path, *, timeout: float = 300.0, progress: Progress | None = None
    ) -> None:
        super().__init__(cluster_name(kubeconfig), kubeconfig=kubeconfig, timeout=timeout)
        self._progress = progress or LogProgress()
        self._client: Any = None

    @property
    def nodes(self) -> list[Node]:
        """No node handles: the nodes are not ours (and may not be containers at all)."""
        return []

    @property
    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` from the given kubeconfig."""
        if self._client is None:
            raise KindClusterError(f"cluster {self.name!r} is not connected; call create() first")
        return self._client

    def create(self, config_file: str | os.PathLike[str] | None = None) -> ExistingCluster:
        """Connect and wait for readiness (all four checks); nothing is created."""
        if config_file is not None:
            raise ConfigError("an existing cluster cannot be created from a kind config file")
        started = time.monotonic()
        self._client = kubeconfigs.api_client(self.kubeconfig_path)
        nodes = len(k8s.CoreV1Api(self._client).list_node().items)
        readiness.wait_ready(self._client, expected_nodes=nodes, timeout=self.spec.timeout)
        self.reused = True
        self.ready_seconds = time.monotonic() - started
        self._progress.note(self.name, f"existing cluster ready in {self.ready_seconds:.1f}s")
        return self

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        """Refused: this plugin runs kubectl inside a node container, which is not ours here."""
        raise ExistingClusterError(
            "kubectl runs inside a node container, and an existing cluster's nodes are not "
            "ours to use; use kind_client (the kubernetes API) instead"
        )

    def load_docker_image(self, image: str) -> list[str]:
        """Refused: images cannot be loaded into the nodes of an existing (maybe remote) cluster."""
        raise ExistingClusterError(
            f"cannot load {image!r}: in existing-cluster mode (--kind-kubeconfig) the nodes may "
            "be remote, so images must come from a registry the cluster can pull from"
        )

    def export_logs(self, dest: str | os.PathLike[str]) -> Path:
        """Refused: the node containers are not ours."""
        raise ExistingClusterError("logs of an existing cluster's nodes cannot be exported")

    def port_forward(
        self,
        service_or_pod_name: str,
        remote_port: int,
        *args: str,
        local_port: int | None = None,
        retries: int = 10,
        namespace: str | None = None,
    ) -> AbstractContextManager[int]:
        """As :meth:`KindCluster.port_forward`: it only needs the API."""
        ns = namespace_from_args(args, namespace)
        return port_forward(
            self.api_client, ns, service_or_pod_name, remote_port, local_port, retries=retries
        )

    def delete(self) -> None:
        """Refused silently: disconnect only; an existing cluster is never deleted."""
        self.detach()

    def detach(self) -> None:
        """Close the API client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self, *, failed: bool = False, export_logs: bool | None = None) -> None:
        """End of use: disconnect; the cluster stays as it was."""
        self.detach()
        self._progress.note(self.name, "existing cluster left as it is")
