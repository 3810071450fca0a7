"""Existing-cluster mode (``--kind-kubeconfig``): the same fixtures on a cluster made elsewhere.

Nothing is created or deleted: ``create()`` only connects and checks readiness, and ``close()``
only disconnects. What needs the node containers (loading images, kubectl inside a node, log
export) cannot work on nodes that may be remote, so it fails with a clear error instead.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Self

import yaml
from kubernetes import client as k8s

from pytest_kindcluster.cluster.base import ClusterBase
from pytest_kindcluster.config.validate import validate_timeout
from pytest_kindcluster.errors import ConfigError, ExistingClusterError, KindClusterError
from pytest_kindcluster.kube import kubeconfig as kubeconfigs
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.util.progress import LogProgress, Progress


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


class ExistingCluster(ClusterBase):
    """A cluster this process did not make and must not change; see the module docstring."""

    def __init__(
        self, kubeconfig: Path, *, timeout: float = 300.0, progress: Progress | None = None
    ) -> None:
        self.kubeconfig_path = kubeconfig
        try:
            self.timeout = validate_timeout(timeout)
        except ConfigError as exc:
            raise ConfigError(f"timeout {exc}") from None
        self._name = cluster_name(kubeconfig)
        self._progress = progress or LogProgress()
        self._client: Any = None

    @property
    def name(self) -> str:
        """The cluster's name, from the kubeconfig's current context."""
        return self._name

    @property
    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` from the given kubeconfig."""
        if self._client is None:
            raise KindClusterError(f"cluster {self.name!r} is not connected; call create() first")
        return self._client

    def create(self, config_file: str | os.PathLike[str] | None = None) -> Self:
        """Connect and wait for readiness (all four checks); nothing is created."""
        if config_file is not None:
            raise ConfigError("an existing cluster cannot be created from a kind config file")
        started = time.monotonic()
        self._client = kubeconfigs.api_client(self.kubeconfig_path)
        nodes = len(k8s.CoreV1Api(self._client).list_node().items)
        readiness.wait_ready(self._client, expected_nodes=nodes, timeout=self.timeout)
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

    def detach(self) -> None:
        """Close the API client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def close(self, *, failed: bool = False, export_logs: bool | None = None) -> None:
        """End of use: disconnect; the cluster stays as it was."""
        self.detach()
        self._progress.note(self.name, "existing cluster left as it is")
