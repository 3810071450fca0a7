"""kubeadm steps: write each node's config, init the control plane, join the workers."""

from __future__ import annotations

import logging
import secrets
import string
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import yaml

from pytest_kindcluster.errors import CommandFailed, ConfigError
from pytest_kindcluster.kube import kubeconfig, readiness
from pytest_kindcluster.provision.context import Step, StepContext
from pytest_kindcluster.provision.kubeadm_config import (
    COREDNS_PATCH,
    PATCHES_DIR,
    KubeadmParams,
    kubeadm_documents,
    patches_coredns,
)
from pytest_kindcluster.provision.kubeadm_kind import customise
from pytest_kindcluster.provision.nodes import wait_booted
from pytest_kindcluster.runtime.base import Node
from pytest_kindcluster.util.concurrency import run_all
from pytest_kindcluster.util.redact import redact

log = logging.getLogger(__name__)

CONFIG_PATH = "/kind/kubeadm.conf"
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"


def bootstrap_token() -> str:
    """A fresh kubeadm token (``[a-z0-9]{6}.[a-z0-9]{16}``) per cluster.

    kind uses one well-known token for every cluster; a random one costs nothing and means no
    other container on the shared network can join a node to our cluster.
    """
    alphabet = string.ascii_lowercase + string.digits
    pick = secrets.choice
    return (
        "".join(pick(alphabet) for _ in range(6)) + "." + "".join(pick(alphabet) for _ in range(16))
    )


def kubectl_argv(*args: str) -> list[str]:
    """kubectl inside the control plane, against the cluster-admin kubeconfig kubeadm wrote."""
    return ["kubectl", f"--kubeconfig={ADMIN_KUBECONFIG}", *args]


class WriteKubeadmConfig:
    """Render every node's kubeadm config for the image's Kubernetes version and write it."""

    name = "kubeadm-config"

    def run(self, ctx: StepContext) -> None:
        """Read /kind/version, then write /kind/kubeadm.conf on each node concurrently."""
        bootstrap = ctx.control_plane
        ctx.kubernetes_version = bootstrap.exec("cat", "/kind/version").stdout.strip()
        ctx.token = ctx.token or bootstrap_token()
        cgroup_v1 = ctx.info is not None and ctx.info.cgroup_version == 1

        config = ctx.spec.cluster_config
        plan = dict(ctx.spec.node_plan())

        def write(node: Node) -> None:
            params = KubeadmParams(
                cluster=ctx.spec.name,
                kubernetes_version=ctx.kubernetes_version,
                node_name=node.name,
                node_ip=node.details().ipv4,
                role=node.role,
                bootstrap=node.name == bootstrap.name,
                token=ctx.token,
                cgroup_v1=cgroup_v1,
                endpoint=ctx.spec.control_plane_endpoint,
                control_planes=len(config.control_planes),
            )
            documents = customise(kubeadm_documents(params), config, plan[node.name])
            text = yaml.safe_dump_all(documents, sort_keys=False)
            node.exec("cp", "/dev/stdin", CONFIG_PATH, stdin=text)
            if params.bootstrap and patches_coredns(ctx.kubernetes_version):
                node.exec("mkdir", "-p", PATCHES_DIR)
                target = f"{PATCHES_DIR}/corednsdeployment.yaml"
                node.exec("cp", "/dev/stdin", target, stdin=COREDNS_PATCH)

        run_all(write, ctx.kube_nodes, what="write kubeadm configs")


# How often the overlap below asks whether the apiserver takes the add-ons yet: an anonymous
# /readyz request from this process, which costs next to nothing (no process in the node).
EARLY_POLL = 0.2


class EarlyStep(Step, Protocol):
    """A step that can do its node-side part (reading manifests) before the apiserver is up."""

    def prepare(self, ctx: StepContext) -> None:
        """Everything that does not need the apiserver."""
        ...


class KubeadmInit:
    """``kubeadm init`` on the bootstrap control plane, with ``early`` steps overlapping it.

    The early steps (the CNI and the default StorageClass) need only the apiserver and the
    admin's RBAC binding. Both exist seconds before kubeadm is done (it still uploads configs,
    makes the bootstrap token and installs its own add-ons), and the controller manager starts
    its controllers in that time: a CNI DaemonSet created then gets its pods at once.
    """

    name = "kubeadm-init"

    def __init__(self, early: Sequence[EarlyStep] = ()) -> None:
        self.early = list(early)

    def run(self, ctx: StepContext) -> None:
        """Init the control plane; its full output goes to the DEBUG log."""
        if not self.early:
            self._init(ctx)
            return
        finished = threading.Event()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kind-early") as pool:
            early = pool.submit(self._run_early, ctx, finished)
            try:
                self._init(ctx)
            finally:
                # An init that failed leaves the early steps undone: the first error wins.
                finished.set()
            pending = early.result()
        for step in pending:  # kubeadm finished before the apiserver took them
            step.run(ctx)

    def _init(self, ctx: StepContext) -> None:
        result = ctx.control_plane.exec(
            "kubeadm", "init", f"--config={CONFIG_PATH}", "--skip-token-print", "--v=6"
        )
        log.debug("kubeadm init on %s:\n%s", ctx.control_plane.name, redact(result.output))

    def _run_early(self, ctx: StepContext, finished: threading.Event) -> list[EarlyStep]:
        """Prepare the early steps, run them once the apiserver answers; returns those not run."""
        for step in self.early:
            step.prepare(ctx)
        pending = list(self.early)
        if not apiserver_answers(ctx, finished):
            return pending
        while pending:
            try:
                pending[0].run(ctx)
            except CommandFailed as exc:
                # /readyz passes a moment before kubeadm binds the admin to cluster-admin;
                # until then every request of the admin is refused, so nothing was created.
                if "forbidden" not in exc.output.lower():
                    raise
                if finished.wait(EARLY_POLL):
                    return pending
                continue
            pending.pop(0)
        log.debug("kind %s: add-ons applied during kubeadm init", ctx.spec.name)
        return pending


def apiserver_answers(ctx: StepContext, finished: threading.Event) -> bool:
    """Wait until /readyz answers 200 where the host's kubeconfig will point; False once done.

    Without a published port to probe (a fake engine) the answer is no: kubeadm's own end is
    then the signal.
    """
    front = ctx.load_balancer or ctx.control_plane  # where the host's kubeconfig points
    try:
        server = kubeconfig.host_server(front.details())
    except ConfigError:
        return False
    while not finished.wait(EARLY_POLL):
        if readiness.answers_readyz(server):
            return True
    return False


class RemoveControlPlaneTaint:
    """Let a single-node cluster schedule workloads on its control plane (as kind does)."""

    name = "untaint"

    def run(self, ctx: StepContext) -> None:
        """Drop the control-plane taint and the exclude-from-load-balancers label."""
        node = ctx.control_plane
        node.exec(
            *kubectl_argv("taint", "nodes", "--all", "node-role.kubernetes.io/control-plane-")
        )
        node.exec(
            *kubectl_argv(
                "label",
                "nodes",
                "--all",
                "node.kubernetes.io/exclude-from-external-load-balancers-",
            )
        )


class JoinWorkers:
    """``kubeadm join`` on every worker at once."""

    name = "join"

    def run(self, ctx: StepContext) -> None:
        """Join the workers concurrently; each one's output goes to the DEBUG log."""

        def join(node: Node) -> None:
            wait_booted(ctx, node)
            result = node.exec("kubeadm", "join", f"--config={CONFIG_PATH}", "--v=6")
            log.debug("kubeadm join on %s:\n%s", node.name, redact(result.output))

        run_all(join, ctx.workers, what="join workers")
