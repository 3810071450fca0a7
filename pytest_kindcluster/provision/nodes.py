"""Steps up to running nodes: preflight checks, the shared network, the node containers."""

from __future__ import annotations

import re

from pytest_kindcluster.config import NodeConfig
from pytest_kindcluster.contract import LOADBALANCER_IMAGE
from pytest_kindcluster.errors import ConfigError, ProvisionError, WaitExpired
from pytest_kindcluster.provision.context import StepContext
from pytest_kindcluster.provision.imagecheck import check_kind_node, ensure_images
from pytest_kindcluster.runtime.base import Node, NodeSpec
from pytest_kindcluster.util.concurrency import run_all
from pytest_kindcluster.util.waiting import wait_until

# systemd's line once the node's services (containerd, kubelet) have been started.
BOOT_DONE = re.compile(r"Reached target .*Multi-User System")
# kind waits 30 s and users on busy CI hosts hit it (kind issues 2460, 3758); be more patient.
BOOT_TIMEOUT = 90.0


class Preflight:
    """Check the engine, the node image and the name before anything is created."""

    name = "preflight"

    def run(self, ctx: StepContext) -> None:
        """Record the engine's facts; fail early on a missing image or a taken name."""
        ctx.info = ctx.runtime.info()
        node_images = {node.image or ctx.spec.image for _, node in ctx.spec.node_plan()}
        # The load balancer runs unprivileged and is no node image: present is enough.
        extra = {LOADBALANCER_IMAGE} if ctx.spec.load_balancer_name else set()
        ensure_images(ctx, node_images | extra, node_images=node_images)
        refuse_taken_name(ctx)


def refuse_taken_name(ctx: StepContext) -> None:
    """Fail before anything exists when a cluster of this name already has nodes."""
    existing = ctx.runtime.list_nodes(ctx.spec.name)
    if existing:
        names = ", ".join(n.name for n in existing)
        raise ConfigError(
            f"a cluster named {ctx.spec.name!r} already exists (nodes: {names}); reuse it "
            f"with --kind-reuse, or delete it with `kind delete cluster --name {ctx.spec.name}`"
        )


class EnsureNetwork:
    """Make sure the shared ``kind`` network exists (created the way kind creates it)."""

    name = "network"

    def run(self, ctx: StepContext) -> None:
        """Create the network if missing, as kind does: shared, unlabelled, never removed."""
        ctx.network_created = ctx.runtime.ensure_network(ctx.spec.network)


def wait_booted(ctx: StepContext, node: Node) -> None:
    """Wait for systemd's multi-user target in ``node``; the console tail is the evidence."""
    try:
        wait_until(
            # Only the newest lines: the whole console on every poll would cost the engine
            # more than the boot itself on a small machine.
            lambda: True if BOOT_DONE.search(ctx.runtime.logs(node.name, tail=200)) else None,
            what=f"systemd to boot in {node.name}",
            timeout=BOOT_TIMEOUT,
            interval=0.2,
        )
    except WaitExpired as exc:
        tail = ctx.runtime.logs(node.name, tail=30)
        raise ProvisionError(
            "nodes",
            f"node {node.name} did not reach systemd's multi-user target within "
            f"{BOOT_TIMEOUT:.0f}s; last console lines:\n{tail}",
        ) from exc


class CreateNodes:
    """Run every node container at once; wait until systemd has booted in the control plane.

    Workers finish booting while the control plane runs ``kubeadm init``; the join step waits
    for each of them (:func:`wait_booted`) before joining it.
    """

    name = "nodes"

    def run(self, ctx: StepContext) -> None:
        """Create the nodes concurrently; ``ctx.nodes`` ends up sorted by name."""
        specs = [self._spec(ctx, name, node) for name, node in ctx.spec.node_plan()]
        if ctx.spec.load_balancer_name:
            specs.append(self._load_balancer(ctx, ctx.spec.load_balancer_name))
        nodes = run_all(ctx.runtime.run_node, specs, what="create nodes")
        ctx.nodes = sorted(nodes, key=lambda n: n.name)
        # Seconds, not the boot timeout, to find out that an image is not a kind node image.
        run_all(check_kind_node, ctx.kube_nodes, what="check node images")
        wait_booted(ctx, ctx.control_plane)

    @staticmethod
    def _spec(ctx: StepContext, name: str, node: NodeConfig) -> NodeSpec:
        net = ctx.spec.cluster_config.networking
        # With a load balancer it publishes the user's API address; control planes still get
        # a random loopback port each, as in kind, for reaching one directly.
        ha = ctx.spec.load_balancer_name is not None
        return NodeSpec(
            name=name,
            cluster=ctx.spec.name,
            role=node.role,
            image=node.image or ctx.spec.image,
            network=ctx.spec.network,
            labels=ctx.labels,
            publish_api_server=node.role == "control-plane",
            api_server=("127.0.0.1", 0) if ha else (net.api_server_address, net.api_server_port),
            mounts=node.extra_mounts,
            ports=node.extra_port_mappings,
        )

    @staticmethod
    def _load_balancer(ctx: StepContext, name: str) -> NodeSpec:
        net = ctx.spec.cluster_config.networking
        return NodeSpec(
            name=name,
            cluster=ctx.spec.name,
            role="external-load-balancer",
            image=LOADBALANCER_IMAGE,
            network=ctx.spec.network,
            labels=ctx.labels,
            publish_api_server=True,
            api_server=(net.api_server_address, net.api_server_port),
        )
