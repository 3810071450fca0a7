"""What every cluster offers tests, whoever made it: pytest-kind's surface, minus creation.

:class:`~.lifecycle.KindCluster` (node containers this process makes) and
:class:`~.existing.ExistingCluster` (any cluster a kubeconfig reaches) both derive from
:class:`ClusterBase`. What only works with the node containers in hand is declared here too, so
a test written against one kind of cluster gets a clear ``KindClusterError`` from the other, not
an ``AttributeError``.
"""

from __future__ import annotations

import logging
import os
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pytest_kindcluster.cluster import kubectl as host_kubectl
from pytest_kindcluster.kube.manifests import manifest_text
from pytest_kindcluster.kube.portforward import namespace_from_args, port_forward

log = logging.getLogger(__name__)


class ClusterBase(ABC):
    """A cluster in use: its name, kubeconfig, API client, and pytest-kind's helpers."""

    #: The kubeconfig file tests (and a subprocess kubectl) use to reach the cluster.
    kubeconfig_path: Path
    #: True when ``create()`` attached to a cluster that already existed.
    reused: bool = False
    #: Seconds from the start of ``create()`` until every readiness check passed.
    ready_seconds: float | None = None

    @property
    @abstractmethod
    def name(self) -> str:
        """The cluster's name."""

    @property
    @abstractmethod
    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for this cluster (not the library's global one)."""

    @abstractmethod
    def create(self, config_file: str | os.PathLike[str] | None = None) -> Self:
        """Make the cluster usable (create or connect) and wait until it is ready."""

    @abstractmethod
    def detach(self) -> None:
        """Stop using the cluster and leave it as it is."""

    @abstractmethod
    def close(self, *, failed: bool = False, export_logs: bool | None = None) -> None:
        """End of use: what happens to the cluster depends on who made it."""

    @property
    @abstractmethod
    def kubectl_path(self) -> Path:
        """A kubectl binary for this host (pytest-kind's attribute), found on first use."""

    @property
    def api(self) -> Any:
        """pytest-kind's pykube client has no counterpart here: a clear AttributeError."""
        raise AttributeError(
            "pytest-kind's .api is a pykube HTTPClient; pytest-kindcluster gives a kubernetes "
            "ApiClient as .api_client (and the kind_client fixture)"
        )

    def kubectl(
        self,
        *args: str,
        stdin: str | bytes | None = None,
        input: str | bytes | None = None,  # subprocess's (and pytest-kind's) name
        timeout: float | None = None,
    ) -> str:
        """Run kubectl on the host against this cluster and return its stdout.

        It runs in the current directory with ``KUBECONFIG`` set to :attr:`kubeconfig_path`,
        so host paths work (``kubectl("apply", "-f", "deploy.yaml")``). ``stdin`` (or
        ``input``, pytest-kind's keyword) is fed to it. A non-zero exit raises
        :class:`CommandFailed` with the output.
        """
        data = stdin if stdin is not None else input
        return host_kubectl.run(
            self.kubectl_path, self.kubeconfig_path, args, stdin=data, timeout=timeout
        )

    @abstractmethod
    def exec_in_node(self, *argv: str, node: str | None = None, stdin: str | None = None) -> str:
        """Run a command inside a node container (the control plane by default); its stdout."""

    @abstractmethod
    def load_docker_image(self, image: str) -> list[str]:
        """Copy a host image into the cluster's nodes; returns the nodes it was loaded on."""

    @abstractmethod
    def export_logs(self, dest: str | os.PathLike[str]) -> Path:
        """Write the nodes' logs under ``dest`` and return it."""

    def apply(self, manifest: str | os.PathLike[str]) -> str:
        """``kubectl apply`` YAML text, a manifest file, or every manifest in a directory."""
        return self.kubectl("apply", "-f", "-", stdin=manifest_text(manifest))

    def port_forward(
        self,
        service_or_pod_name: str,
        remote_port: int,
        *args: str,
        local_port: int | None = None,
        retries: int = 10,
        namespace: str | None = None,
    ) -> AbstractContextManager[int]:
        """Forward a local port to ``pod/NAME``, ``svc/NAME`` or ``NAME``; yields the local port.

        pytest-kind's signature: extra ``args`` may be kubectl's ``-n NAMESPACE`` (or
        ``--namespace``). No kubectl is involved; several connections may be open at once.
        """
        ns = namespace_from_args(args, namespace)
        return port_forward(
            self.api_client, ns, service_or_pod_name, remote_port, local_port, retries=retries
        )

    def __enter__(self) -> Self:
        return self.create()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close(failed=exc is not None)
        except Exception as cleanup:
            if exc is None:
                raise
            # The first error wins: the failure inside the block, with this one as a note.
            exc.add_note(f"closing cluster {self.name!r} also failed: {cleanup}")
            log.warning("closing cluster %s failed: %s", self.name, cleanup)
