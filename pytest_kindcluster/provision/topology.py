"""Steps that only some cluster configs need: the HA load balancer, extra control planes,
and containerd patches (docs/node-contract.md#high-availability and
#containerd-patches).
"""

from __future__ import annotations

import logging

from pytest_kindcluster.config.containerd import CONFIG_PATH as CONTAINERD_CONFIG
from pytest_kindcluster.config.containerd import patch_containerd_config
from pytest_kindcluster.errors import CommandFailed, ConfigError, PatchError
from pytest_kindcluster.provision import loadbalancer
from pytest_kindcluster.provision.context import StepContext
from pytest_kindcluster.provision.nodes import wait_booted
from pytest_kindcluster.runtime.base import Node
from pytest_kindcluster.util.concurrency import run_all
from pytest_kindcluster.util.redact import redact
from pytest_kindcluster.util.waiting import wait_until

log = logging.getLogger(__name__)

# What a joining control plane needs from the first one: the cluster's CAs and service-account
# key pair (kubeadm would otherwise mint new ones), and the admin kubeconfig (kind copies it too).
SHARED_CERTS = (
    "admin.conf",
    "pki/ca.crt",
    "pki/ca.key",
    "pki/front-proxy-ca.crt",
    "pki/front-proxy-ca.key",
    "pki/sa.key",
    "pki/sa.pub",
    "pki/etcd/ca.crt",
    "pki/etcd/ca.key",
)
CONTAINERD_RESTART_TIMEOUT = 60.0


class ConfigureLoadBalancer:
    """Point haproxy at every control plane and reload it (before kubeadm needs it)."""

    name = "loadbalancer"

    def run(self, ctx: StepContext) -> None:
        """Write haproxy.cfg into the load balancer and signal its master to reload."""
        lb = ctx.load_balancer
        if lb is None:
            raise ConfigError("an HA cluster needs its load-balancer node, and none was created")
        names = [n.name for n in ctx.nodes if n.role == "control-plane"]
        lb.exec(
            "cp", "/dev/stdin", loadbalancer.CONFIG_PATH, stdin=loadbalancer.render_config(names)
        )
        lb.exec(*loadbalancer.RELOAD_ARGV)


class JoinControlPlanes:
    """Copy the shared CAs to each secondary control plane, then join them one at a time.

    kubeadm adds etcd members one by one; joining two at once can race on the etcd member list,
    so, as kind does, secondary control planes join serially (workers join concurrently later).
    """

    name = "join-control-planes"

    def run(self, ctx: StepContext) -> None:
        """Tar the shared files out of the first control plane and into each other one."""
        first = ctx.control_plane
        others = [n for n in ctx.nodes if n.role == "control-plane" and n.name != first.name]
        if not others:
            return
        bundle = first.exec("tar", "-C", "/etc/kubernetes", "-cf", "-", *SHARED_CERTS).raw_stdout
        for node in others:
            wait_booted(ctx, node)
            node.exec("mkdir", "-p", "/etc/kubernetes/pki/etcd")
            node.exec("tar", "-C", "/etc/kubernetes", "-xf", "-", stdin=bundle)
            result = node.exec("kubeadm", "join", "--config=/kind/kubeadm.conf", "--v=6")
            log.debug("kubeadm join (control plane) on %s:\n%s", node.name, redact(result.output))


class PatchContainerd:
    """Apply containerdConfigPatches on every node and restart containerd."""

    name = "containerd-config"

    def run(self, ctx: StepContext) -> None:
        """Patch /etc/containerd/config.toml node by node, concurrently."""
        config = ctx.spec.cluster_config
        patches = config.containerd_config_patches
        json6902 = config.containerd_config_patches_json6902
        if not patches and not json6902:
            return

        def patch(node: Node) -> None:
            wait_booted(ctx, node)  # systemd must be up to restart containerd
            current = node.exec("cat", CONTAINERD_CONFIG).stdout
            try:
                patched = patch_containerd_config(current, patches, json6902)
            except PatchError as exc:
                raise ConfigError(f"containerdConfigPatches on {node.name}: {exc}") from exc
            node.exec("cp", "/dev/stdin", CONTAINERD_CONFIG, stdin=patched)
            node.exec("systemctl", "restart", "containerd")
            wait_until(
                lambda: node.exec("ctr", "version").exit_code == 0 or None,
                what=f"containerd to come back on {node.name} after patching its config",
                timeout=CONTAINERD_RESTART_TIMEOUT,
                interval=0.2,
                retry_on=(CommandFailed,),
            )

        run_all(patch, ctx.kube_nodes, what=self.name)
