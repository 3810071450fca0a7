"""Existing-cluster mode (``--kind-kubeconfig``): the same fixtures on a cluster made elsewhere.

Any kubeconfig works: GKE, EKS, AKS or on-premises contexts with tokens, token files, exec
plugins or certificates, through the kubernetes library's own loader. Nothing is created or
deleted, and nothing is written next to the user's kubeconfig. What the session needs of its own
lives in one private directory (mode 0700) that ``close()`` removes: a copy of the chosen context
for kubectl (:attr:`kubeconfig_path`) and the certificate files the loader writes for inline data.
A run killed before ``close()`` leaves that directory behind; the next run removes it.

Readiness is read-only: ``/readyz`` plus whatever else the credentials may read, each reported;
a check they may not make is reported as forbidden, not failed. Loading images, running commands
in nodes and exporting node logs need the node containers, which are not ours here, so they fail
with a clear error.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Any, Self

from pytest_kindcluster.cluster import kubectl as host_kubectl
from pytest_kindcluster.cluster.base import ClusterBase
from pytest_kindcluster.cluster.ownership import Owner, OwnerState
from pytest_kindcluster.config.validate import validate_timeout
from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from pytest_kindcluster.errors import (
    ConfigError,
    ExistingClusterError,
    KindClusterError,
    RuntimeUnavailable,
)
from pytest_kindcluster.kube import kubeconfig as kubeconfigs
from pytest_kindcluster.kube import readiness
from pytest_kindcluster.runtime import connect_engine
from pytest_kindcluster.runtime.base import HostImages
from pytest_kindcluster.util.progress import LogProgress, Progress

# Private directories in the temp dir: <prefix><owner pid>-<owner start>-<random>.
PRIVATE_DIR_PREFIX = "kindcluster-existing-"


def display_name(cluster: str) -> str:
    """The name shown for a cluster: kind's ``kind-`` prefix dropped, otherwise as it is.

    Never validated as a kind name: ``gke_proj_zone_name`` and ``arn:aws:eks:...:cluster/x``
    are names too.
    """
    return cluster.removeprefix("kind-") or "existing"


class ExistingCluster(ClusterBase):
    """A cluster this process did not make and must not change; see the module docstring."""

    def __init__(
        self,
        kubeconfig: Path,
        *,
        context: str | None = None,
        timeout: float = 300.0,
        progress: Progress | None = None,
        images: HostImages | None = None,
        image: str = DEFAULT_NODE_IMAGE,
    ) -> None:
        try:
            self.timeout = validate_timeout(timeout)
        except ConfigError as exc:
            raise ConfigError(f"timeout {exc}") from None
        self.source = kubeconfig
        self.context = kubeconfigs.check_context(kubeconfig, context)
        doc = kubeconfigs.minify(kubeconfig, self.context)
        self._minified = doc
        self._name = display_name(str(doc["contexts"][0].get("context", {}).get("cluster", "")))
        #: Until ``create()``, the user's file; then the private copy of the chosen context.
        self.kubeconfig_path = kubeconfig
        self._progress = progress or LogProgress()
        self._images = images
        self._image = image
        self._client: Any = None
        self._dir: Path | None = None
        self._kubectl: Path | None = None
        #: Each readiness check's final state, as reported.
        self.checks: dict[str, str] = {}

    @property
    def name(self) -> str:
        """The cluster's name in the chosen context (``kind-`` prefix dropped)."""
        return self._name

    @property
    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` from the given kubeconfig and context."""
        if self._client is None:
            raise KindClusterError(f"cluster {self.name!r} is not connected; call create() first")
        return self._client

    @property
    def kubectl_path(self) -> Path:
        """The default node image's kubectl if the engine has it, else one on ``PATH``."""
        if self._kubectl is None:
            images = self._images
            if images is None:
                with suppress(RuntimeUnavailable):  # no engine at all is fine here
                    images = connect_engine()
            self._kubectl = host_kubectl.require(images, self._image, ExistingClusterError)
        return self._kubectl

    def create(self, config_file: str | os.PathLike[str] | None = None) -> Self:
        """Connect and check readiness read-only; nothing is created in the cluster."""
        if config_file is not None:
            raise ConfigError("an existing cluster cannot be created from a kind config file")
        started = time.monotonic()
        remove_stale_private_dirs()
        owner = Owner.of()
        self._dir = Path(
            tempfile.mkdtemp(
                prefix=f"{PRIVATE_DIR_PREFIX}{owner.pid}-{owner.started or 0}-{owner.pid_ns or 0}-"
            )
        )
        try:
            self.kubeconfig_path = kubeconfigs.write_private(
                self._dir / "kubeconfig", self._minified
            )
            self._client = kubeconfigs.api_client(
                self.source, context=self.context, temp_dir=self._dir / "certs"
            )
            readiness.probe_apiserver(self._client)
            readiness.wait_ready(
                self._client,
                expected_nodes=0,
                timeout=self.timeout,
                checks=readiness.existing_checks(),
                forbidden_ok=True,
                last_state=self.checks,
            )
        except BaseException:
            self._forget()
            raise
        self.reused = True
        self.ready_seconds = time.monotonic() - started
        for check, state in self.checks.items():
            self._progress.note(self.name, f"{check}: {state}")
        self._progress.note(
            self.name,
            f"existing cluster (context {self.context}) ready in {self.ready_seconds:.1f}s",
        )
        return self

    def exec_in_node(self, *argv: str, node: str | None = None, stdin: str | None = None) -> str:
        """Refused: an existing cluster's nodes are not containers of ours."""
        raise ExistingClusterError(
            "cannot run commands in the nodes of an existing cluster (--kind-kubeconfig): "
            "they are not containers of this engine; use kubectl() or kind_client"
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
        """Close the API client and remove the private directory."""
        self._forget()

    def close(self, *, failed: bool = False, export_logs: bool | None = None) -> None:
        """End of use: disconnect; the cluster stays as it was."""
        self.detach()
        self._progress.note(self.name, "existing cluster left as it is")

    def _forget(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self.kubeconfig_path = self.source


def remove_stale_private_dirs() -> list[Path]:
    """Remove the private directories of runs whose process is provably gone.

    The name records the owner's pid, start time and PID namespace (``<pid>-<start>-<pidns>-``):
    a directory of another PID namespace sharing this temp dir is left alone, as the reaper
    leaves such clusters alone. The temp dir does not outlive a boot, so this boot is assumed.
    """
    removed = []
    here = Owner.of()
    for path in Path(tempfile.gettempdir()).glob(f"{PRIVATE_DIR_PREFIX}*"):
        parts = path.name.removeprefix(PRIVATE_DIR_PREFIX).split("-")
        if len(parts) != 4 or not parts[0].isdigit():
            continue  # not ours, or an older layout that says nothing of its namespace
        pid, started, pid_ns = int(parts[0]), parts[1], parts[2]
        owner = Owner(here.host, pid, "" if started == "0" else started, pid_ns, here.boot_id)
        if owner.state() is OwnerState.GONE:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
