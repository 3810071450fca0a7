"""kubeadm steps: write each node's config, init the control plane, join the workers."""

from __future__ import annotations

import logging
import secrets
import string

import yaml

from pytest_kindcluster.provision.context import StepContext
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
            )
            documents = customise(kubeadm_documents(params), config, plan[node.name])
            text = yaml.safe_dump_all(documents, sort_keys=False)
            node.exec("cp", "/dev/stdin", CONFIG_PATH, stdin=text)
            if params.bootstrap and patches_coredns(ctx.kubernetes_version):
                node.exec("mkdir", "-p", PATCHES_DIR)
                target = f"{PATCHES_DIR}/corednsdeployment.yaml"
                node.exec("cp", "/dev/stdin", target, stdin=COREDNS_PATCH)

        run_all(write, ctx.kube_nodes, what="write kubeadm configs")


class KubeadmInit:
    """``kubeadm init`` on the bootstrap control plane."""

    name = "kubeadm-init"

    def run(self, ctx: StepContext) -> None:
        """Init the control plane; its full output goes to the DEBUG log."""
        result = ctx.control_plane.exec(
            "kubeadm", "init", f"--config={CONFIG_PATH}", "--skip-token-print", "--v=6"
        )
        log.debug("kubeadm init on %s:\n%s", ctx.control_plane.name, redact(result.output))


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
