"""Boot a cluster from a snapshot: the steps after which it is as usable as a cold one.

Inside the cluster everything keeps the identity it had at capture: hostnames, Kubernetes node
names, the etcd member, the control-plane endpoint name (``<captured>-control-plane:6443``),
certificates. Changing a node's name would touch the etcd member, the kubelet's client
certificate and the Node object, which nothing rewrites (kind issue 1689 shows what an IP change
alone does to several control planes). Outside, everything is new: container names and kind's
labels follow the new cluster name, and the cluster gets a Docker network of its own, so clones
of one snapshot can run side by side with the same in-cluster names.

The one inside thing that must change is the node IP: the new network hands out new addresses.
kind's node entrypoint handles the same situation after ``docker restart``
(kind: images/base/files/usr/local/bin/entrypoint, ``enable_network_magic``): it replaces the old
address in the static-pod manifests, the component kubeconfigs, ``/kind/kubeadm.conf`` and
``kubeadm-flags.env``, then regenerates the apiserver's serving certificate. The kubelet of a
snapshot image does not start by itself (see ``cluster/warm.py``), so nothing reads the old
address before it is replaced.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime

from pytest_kindcluster.config.model import NodeConfig
from pytest_kindcluster.contract import (
    API_SERVER_PORT,
    CLUSTER_LABEL,
    NETWORK_CLUSTER_LABEL,
    SNAPSHOT_NETWORK_LABEL,
)
from pytest_kindcluster.errors import ImageError, ProvisionError
from pytest_kindcluster.provision.access import ExportKubeconfig, wait_cluster_ready
from pytest_kindcluster.provision.context import Step, StepContext
from pytest_kindcluster.provision.imagecheck import check_kind_node
from pytest_kindcluster.provision.nodes import BOOT_TIMEOUT, refuse_taken_name
from pytest_kindcluster.runtime.base import Node, NodeSpec, Role, SnapshotStore
from pytest_kindcluster.util.concurrency import run_all

# Present in a snapshot image, this file holds the kubelet back at boot (KUBELET_GATE): systemd
# starts the unit as usual, and the kubelet itself runs the moment the rewrite removes the file,
# with no round trip to systemd.
PENDING_FILE = "/kind/snapshot-rewrite-pending"
KUBELET_GATE_FILE = "/etc/systemd/system/kubelet.service.d/50-snapshot.conf"
KUBELET_GATE = f"""\
# pytest-kindcluster snapshot: the kubelet waits until the node's new IP address has replaced
# the captured one in its configuration (provision/restore.py removes {PENDING_FILE}).
[Service]
ExecStartPre=/bin/sh -c 'while [ -e {PENDING_FILE} ]; do sleep 0.05; done'
"""

# Replace the old address wherever kind's entrypoint does, and wherever else a captured node
# holds it (host-network pods' etc-hosts copies); perl, for a match that stops at the address's
# end (10.0.0.2 must not match inside 10.0.0.23).
REWRITE_SCRIPT = r"""
set -euo pipefail
old=$1 new=$2 role=$3
files=$(grep -rlF -- "$old" /etc/kubernetes /kind /var/lib/kubelet 2>/dev/null || true)
if [[ -n $files ]]; then
  perl -pi -e 'BEGIN { ($o, $n) = (shift, shift) } s/(?<![0-9.])\Q$o\E(?![0-9])/$n/g' \
    "$old" "$new" $files
fi
if [[ $role == control-plane ]]; then
  rm -f /etc/kubernetes/pki/apiserver.crt /etc/kubernetes/pki/apiserver.key
  kubeadm init phase certs apiserver --config /kind/kubeadm.conf
fi
"""
# Once systemd is PID 1 the entrypoint has finished, including its rewrite of the NAT table
# (Docker's DNS), so rules added now stay; then the kubelet may go.
START_SCRIPT = """
set -eu
until [ "$(cat /proc/1/comm)" = systemd ]; do sleep 0.05; done
{rules}
rm -f {pending}
"""
BRIDGE_COMMENT = "pytest-kindcluster: apiserver until kube-proxy syncs"


def network_name(cluster: str) -> str:
    """The Docker network of a cluster booted from a snapshot: one per cluster."""
    return f"kindcluster-{cluster}"


@dataclass(frozen=True)
class RestoreNode:
    """One node of a snapshot, as the boot needs it."""

    image: str
    name: str  # in-cluster: hostname, Kubernetes node name, network alias
    role: Role
    ipv4: str  # at capture
    suffix: str  # the container is <cluster>-<suffix>, as kind names it


@dataclass
class BootState:
    """Shared by the steps of one boot: when it started, for readiness on fresh evidence."""

    since: datetime | None = None


def restore_steps(nodes: Sequence[RestoreNode], store: SnapshotStore) -> list[Step]:
    """The boot flow for a snapshot of ``nodes``."""
    boot = BootState()
    return [
        CheckSnapshot(nodes),
        OwnNetwork(store),
        BootNodes(nodes, boot),
        ExportKubeconfig(),
        WaitFreshReady(boot),
    ]


class CheckSnapshot:
    """The snapshot's images are there and the cluster name is free."""

    name = "preflight"

    def __init__(self, nodes: Sequence[RestoreNode]) -> None:
        self.nodes = nodes

    def run(self, ctx: StepContext) -> None:
        """Fail before anything exists if an image went missing or the name is taken."""
        ctx.info = ctx.runtime.info()
        missing = [n.image for n in self.nodes if ctx.images.image_id(n.image) is None]
        if missing:
            raise ImageError(f"snapshot image(s) {', '.join(missing)} are gone")
        refuse_taken_name(ctx)


class OwnNetwork:
    """A network for this cluster alone: clones share their in-cluster names."""

    name = "network"

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store

    def run(self, ctx: StepContext) -> None:
        """Create it with the cluster's labels; the cluster's deletion removes it."""
        labels = {
            **ctx.labels,
            CLUSTER_LABEL: ctx.spec.name,
            # What lets the cluster's deletion (and only it) remove the network.
            NETWORK_CLUSTER_LABEL: ctx.spec.name,
            SNAPSHOT_NETWORK_LABEL: "true",
        }
        self.store.create_network(ctx.spec.network, labels)
        ctx.network_created = True


class BootNodes:
    """Each node, as soon as its own container runs: address rewritten, kubelet released.

    One pipeline per node, all at once: the control plane's kubelet (and so its apiserver, the
    long pole) does not wait for the workers' containers. Docker fills each new /var from the
    image as the container is created.
    """

    name = "nodes+rewrite"

    def __init__(self, nodes: Sequence[RestoreNode], boot: BootState) -> None:
        self.nodes = nodes
        self.boot = boot

    def run(self, ctx: StepContext) -> None:
        """Create, check, rewrite and release every node concurrently."""
        self.boot.since = datetime.now(UTC)
        plan = dict(ctx.spec.node_plan())
        control_plane: Future[str] = Future()

        def boot(node: RestoreNode) -> Node:
            try:
                handle = ctx.runtime.run_node(self._spec(ctx, node, plan))
                check_kind_node(handle)
                address = handle.details().ipv4
                if node.role == "control-plane":
                    control_plane.set_result(address)
                if node.ipv4 != address:
                    handle.exec(
                        "bash", "-c", REWRITE_SCRIPT, "rewrite", node.ipv4, address, node.role
                    )
            except BaseException as exc:
                if node.role == "control-plane" and not control_plane.done():
                    control_plane.set_exception(exc)
                raise
            release(ctx, handle, control_plane.result(timeout=BOOT_TIMEOUT))
            return handle

        ctx.nodes = sorted(run_all(boot, list(self.nodes), what="boot nodes"), key=_name)

    @staticmethod
    def _spec(ctx: StepContext, node: RestoreNode, plan: dict[str, NodeConfig]) -> NodeSpec:
        name = f"{ctx.spec.name}-{node.suffix}"
        config = plan.get(name, NodeConfig())
        net = ctx.spec.cluster_config.networking
        return NodeSpec(
            name=name,
            cluster=ctx.spec.name,
            role=node.role,
            image=node.image,
            network=ctx.spec.network,
            labels=ctx.labels,
            publish_api_server=node.role == "control-plane",
            api_server=(net.api_server_address, net.api_server_port),
            mounts=config.extra_mounts,
            ports=config.extra_port_mappings,
            hostname=node.name,
            aliases=(node.name,),
        )


def release(ctx: StepContext, node: Node, control_plane_ip: str) -> None:
    """Once systemd runs: the boot-time NAT rules, then the kubelet may start."""
    rules = [
        shlex.join(["iptables", "-t", "nat", "-I", *rule])
        for rule in boot_rules(ctx, node, control_plane_ip)
    ]
    script = START_SCRIPT.format(rules="\n".join(rules), pending=PENDING_FILE)
    started = node.exec("timeout", str(BOOT_TIMEOUT), "sh", "-c", script, check=False)
    if started.exit_code != 0:
        tail = ctx.runtime.logs(node.name, tail=30)
        raise ProvisionError(
            BootNodes.name,
            f"could not release the kubelet on {node.name} (exit {started.exit_code}: "
            f"{started.output.strip() or 'systemd did not come up'}); last console "
            f"lines:\n{tail}",
        )


def boot_rules(ctx: StepContext, node: Node, control_plane_ip: str) -> list[list[str]]:
    """NAT rules that take the ``kubernetes`` Service's address to the apiserver from the start.

    A restored node has no kube-proxy rules yet (they live in the node's network namespace,
    which is new), while every pod it restarts dials that address at once. A connection
    attempted before kube-proxy's rules exist keeps its conntrack entry without NAT and hangs
    until the client's dial timeout (CoreDNS: about 30 s before it is Ready). These rules do
    kube-proxy's job for the one Service everything needs first; ``WaitFreshReady`` removes them.

    On workers, until kube-router routes pod subnets between the nodes, the control plane can
    only answer a worker's pod if the request comes from the worker's own address: masquerade.
    """
    networking = ctx.spec.cluster_config.networking
    if networking.kube_proxy_mode == "none":
        return []
    service = str(ipaddress.ip_network(networking.service_subnet)[1])
    target = f"{control_plane_ip}:{API_SERVER_PORT}"
    to_service = ["-d", f"{service}/32", "-p", "tcp", "--dport", "443"]
    comment = ["-m", "comment", "--comment", BRIDGE_COMMENT]
    rules = [
        [chain, *to_service, *comment, "-j", "DNAT", "--to-destination", target]
        for chain in ("OUTPUT", "PREROUTING")
    ]
    if node.role != "control-plane":
        to_apiserver = [
            "-d",
            f"{control_plane_ip}/32",
            "-p",
            "tcp",
            "--dport",
            str(API_SERVER_PORT),
        ]
        rules.append(["POSTROUTING", *to_apiserver, *comment, "-j", "MASQUERADE"])
    return rules


class WaitFreshReady:
    """Strict readiness, counting only what the cluster reported after this boot began."""

    name = "ready"

    def __init__(self, boot: BootState) -> None:
        self.boot = boot

    def run(self, ctx: StepContext) -> None:
        """Wait, then hand the apiserver's Service back to kube-proxy alone."""
        first_ok = wait_cluster_ready(ctx, since=self.boot.since)
        ctx.checks_passed = first_ok
        passed = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in first_ok.items())
        ctx.progress.note(ctx.spec.name, f"checks passed after: {passed}")
        control_plane = ctx.control_plane.details().ipv4

        def unbridge(node: Node) -> None:
            rules = boot_rules(ctx, node, control_plane)
            if rules:
                script = "\n".join(shlex.join(["iptables", "-t", "nat", "-D", *r]) for r in rules)
                node.exec("sh", "-c", script)

        run_all(unbridge, ctx.kube_nodes, what="remove the boot-time NAT rules")


def _name(node: Node) -> str:
    return node.name
