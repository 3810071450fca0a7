"""The last steps: a kubeconfig for the host, and strict readiness through it."""

from __future__ import annotations

from datetime import datetime

from pytest_kindcluster.kube import kubeconfig, readiness
from pytest_kindcluster.provision.context import StepContext
from pytest_kindcluster.provision.kubeadm import ADMIN_KUBECONFIG


class ExportKubeconfig:
    """Write the cluster's private kubeconfig and build the ApiClient from it."""

    name = "kubeconfig"

    def run(self, ctx: StepContext) -> None:
        """Read admin.conf in the control plane, point it at the published port, write it."""
        export_kubeconfig(ctx)


def export_kubeconfig(ctx: StepContext) -> None:
    """Shared with cluster reuse, which needs a fresh kubeconfig for an existing cluster."""
    node = ctx.control_plane
    admin = node.exec("cat", ADMIN_KUBECONFIG).stdout
    # With several control planes the host goes through the load balancer, as kind's does.
    server = kubeconfig.host_server((ctx.load_balancer or node).details())
    doc = kubeconfig.rewrite_kubeconfig(admin, cluster=ctx.spec.name, server=server)
    kubeconfig.write_private(ctx.kubeconfig_path, doc)
    ctx.api_client = kubeconfig.api_client(ctx.kubeconfig_path)


def wait_cluster_ready(ctx: StepContext, since: datetime | None = None) -> dict[str, float]:
    """The standard checks; without a CNI (disableDefaultCNI) only those that can pass.

    Nodes stay NotReady and CoreDNS Pending until the user installs a network plugin, which
    is what they asked for; the apiserver and the default ServiceAccount still must be there.
    ``since``: only evidence from after that time counts (a cluster booted from a snapshot).
    """
    nodes = len(ctx.kube_nodes)
    if not ctx.spec.cluster_config.networking.disable_default_cni:
        if since is not None:
            return readiness.wait_ready(
                ctx.api_client, expected_nodes=nodes, timeout=ctx.spec.timeout, since=since
            )
        return readiness.wait_ready(ctx.api_client, expected_nodes=nodes, timeout=ctx.spec.timeout)
    usable = ("apiserver /readyz", "default ServiceAccount")
    checks = {k: v for k, v in readiness.standard_checks(nodes, since).items() if k in usable}
    return readiness.wait_ready(
        ctx.api_client, expected_nodes=nodes, timeout=ctx.spec.timeout, checks=checks
    )


class WaitReady:
    """Wait until /readyz, every node, CoreDNS and the default ServiceAccount are all good."""

    name = "ready"

    def run(self, ctx: StepContext) -> None:
        """Poll the readiness checks within the cluster's timeout."""
        first_ok = wait_cluster_ready(ctx)
        # Which check held readiness back is the first question when it is slow.
        ctx.checks_passed = first_ok
        passed = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in first_ok.items())
        ctx.progress.note(ctx.spec.name, f"checks passed after: {passed}")
