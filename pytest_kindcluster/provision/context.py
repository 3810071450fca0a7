"""What the provisioning steps share, and the plain loop that runs them."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_kindcluster.config import ClusterConfig, NodeConfig
from pytest_kindcluster.config.validate import validate_cluster_name, validate_timeout
from pytest_kindcluster.contract import API_SERVER_PORT, DEFAULT_NETWORK
from pytest_kindcluster.errors import (
    CommandFailed,
    ConfigError,
    KindClusterError,
    ProvisionError,
    ReadinessTimeout,
)
from pytest_kindcluster.runtime.base import HostImages, Node, NodeRuntime, RuntimeInfo
from pytest_kindcluster.util.progress import PhaseTiming, Progress

log = logging.getLogger(__name__)


# Node names append "-control-plane" and must stay valid 63-character DNS labels.


@dataclass(frozen=True)
class ClusterSpec:
    """The cluster to create: kind's cluster config, or one control plane plus ``workers``."""

    name: str
    image: str
    workers: int = 0
    timeout: float = 300.0
    network: str = DEFAULT_NETWORK
    config: ClusterConfig | None = None

    def __post_init__(self) -> None:
        validate_cluster_name(self.name)
        if self.workers < 0:
            raise ConfigError(f"workers must be 0 or more, got {self.workers}")
        try:
            validate_timeout(self.timeout)
        except ConfigError as exc:
            raise ConfigError(f"timeout {exc}") from None
        if self.config is not None and self.workers:
            raise ConfigError(
                "give the workers in the kind cluster config (nodes: - role: worker), "
                f"not also as workers={self.workers}"
            )

    @property
    def cluster_config(self) -> ClusterConfig:
        """The config to create: the given one, or kind's default plus ``workers`` workers."""
        if self.config is not None:
            return self.config
        nodes = (NodeConfig(), *(NodeConfig(role="worker") for _ in range(self.workers)))
        return ClusterConfig(nodes=nodes)

    @property
    def control_plane_name(self) -> str:
        """kind's node naming, so `kind` commands find the nodes where they expect them."""
        return f"{self.name}-control-plane"

    @property
    def load_balancer_name(self) -> str | None:
        """kind's load-balancer container, present only with several control planes."""
        ha = self.cluster_config.high_availability
        return f"{self.name}-external-load-balancer" if ha else None

    @property
    def control_plane_endpoint(self) -> str:
        """Where nodes reach the apiserver: the load balancer when HA, else the control plane."""
        return f"{self.load_balancer_name or self.control_plane_name}:{API_SERVER_PORT}"

    def node_plan(self) -> list[tuple[str, NodeConfig]]:
        """Every Kubernetes node to create, by kind's name, with its part of the config."""
        return self.cluster_config.node_names(self.name)

    def worker_names(self) -> list[str]:
        """``<name>-worker``, ``<name>-worker2``, ... as kind names them."""
        return [name for name, node in self.node_plan() if node.role == "worker"]


@dataclass
class StepContext:
    """Shared state of one create run. Steps read what earlier steps left here."""

    spec: ClusterSpec
    runtime: NodeRuntime
    images: HostImages
    progress: Progress
    kubeconfig_path: Path
    run_id: str
    labels: dict[str, str] = field(default_factory=dict)
    info: RuntimeInfo | None = None
    nodes: list[Node] = field(default_factory=list)
    kubernetes_version: str = ""
    token: str = ""
    network_created: bool = False
    api_client: Any = None
    timings: list[PhaseTiming] = field(default_factory=list)
    # readiness check -> seconds into the "ready" phase when it first passed
    checks_passed: dict[str, float] = field(default_factory=dict)
    failed_step: str | None = None

    @property
    def control_plane(self) -> Node:
        """The bootstrap control plane: the first control-plane node in name order (as kind)."""
        return next(n for n in self.nodes if n.role == "control-plane")

    @property
    def workers(self) -> list[Node]:
        """Every worker node."""
        return [n for n in self.nodes if n.role == "worker"]

    @property
    def kube_nodes(self) -> list[Node]:
        """The nodes that become Kubernetes nodes (all but the load balancer)."""
        return [n for n in self.nodes if n.role != "external-load-balancer"]

    def node(self, name: str) -> Node:
        """The node container called ``name``; ConfigError naming the cluster's nodes if none."""
        found = next((n for n in self.nodes if n.name == name), None)
        if found is None:
            names = ", ".join(n.name for n in self.nodes)
            raise ConfigError(f"cluster {self.spec.name!r} has no node {name!r} (nodes: {names})")
        return found

    @property
    def load_balancer(self) -> Node | None:
        """The HA load balancer's container, if the cluster has one."""
        return next((n for n in self.nodes if n.role == "external-load-balancer"), None)


class Step(Protocol):
    """One small piece of the create flow."""

    name: str

    def run(self, ctx: StepContext) -> None:
        """Do the step; raise on failure (the caller rolls back)."""
        ...


def run_steps(steps: list[Step], ctx: StepContext) -> None:
    """Run the steps in order, timing each; on failure, note which step failed and re-raise."""
    for step in steps:
        ctx.progress.phase_started(ctx.spec.name, step.name)
        started = time.monotonic()
        try:
            step.run(ctx)
        except BaseException:
            ctx.failed_step = step.name
            timing = PhaseTiming(step.name, time.monotonic() - started, ok=False)
            ctx.timings.append(timing)
            ctx.progress.phase_finished(ctx.spec.name, timing)
            raise
        timing = PhaseTiming(step.name, time.monotonic() - started, ok=True)
        ctx.timings.append(timing)
        ctx.progress.phase_finished(ctx.spec.name, timing)


def typed_failure(exc: Exception, step: str, logs_dir: Path | None) -> KindClusterError:
    """The error a failed create raises: typed by what failed, carrying the logs path.

    A readiness timeout stays a ReadinessTimeout and usage problems (ImageError, ConfigError,
    RuntimeUnavailable...) keep their own types; everything else becomes a ProvisionError naming
    the step.
    """
    where = str(logs_dir) if logs_dir else None
    if isinstance(exc, ReadinessTimeout):
        return ReadinessTimeout(exc.timeout, exc.last_state, logs_dir=where)
    if isinstance(exc, CommandFailed):
        exc.step = step
    if isinstance(exc, KindClusterError) and not isinstance(exc, CommandFailed | ProvisionError):
        if where:
            exc.add_note(f"logs exported to {where}")
        return exc  # ImageError, ConfigError, RuntimeUnavailable... keep their types
    return ProvisionError(step, describe_failure(exc), logs_dir=where)


def describe_failure(exc: BaseException) -> str:
    """What went wrong, for a message: our errors by their text, others with their type too."""
    if isinstance(exc, ProvisionError):
        return exc.message
    if isinstance(exc, BaseExceptionGroup):
        return "\n".join(describe_failure(inner) for inner in exc.exceptions)
    return str(exc) if isinstance(exc, KindClusterError) else f"{type(exc).__name__}: {exc}"
