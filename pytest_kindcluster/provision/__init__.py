"""Provisioning: the create flow as a list of small steps, built in one place (kind's actions).

:func:`build_steps` decides which steps a cluster needs; :func:`run_steps` runs them in a plain
loop. Rolling back is the caller's business (``KindCluster``), because only it knows the
retention policy.
"""

from __future__ import annotations

from pytest_kindcluster.provision.access import ExportKubeconfig, WaitReady
from pytest_kindcluster.provision.addons import InstallCNI, InstallStorage
from pytest_kindcluster.provision.context import (
    ClusterSpec,
    Step,
    StepContext,
    run_steps,
)
from pytest_kindcluster.provision.kubeadm import (
    EarlyStep,
    JoinWorkers,
    KubeadmInit,
    RemoveControlPlaneTaint,
    WriteKubeadmConfig,
)
from pytest_kindcluster.provision.nodes import CreateNodes, EnsureNetwork, Preflight
from pytest_kindcluster.provision.topology import (
    ConfigureLoadBalancer,
    JoinControlPlanes,
    PatchContainerd,
)

__all__ = ["ClusterSpec", "Step", "StepContext", "build_steps", "run_steps"]


def build_steps(spec: ClusterSpec) -> list[Step]:
    """The create flow for ``spec``, in order (docs/node-contract.md#the-create-flow)."""
    config = spec.cluster_config
    steps: list[Step] = [Preflight(), EnsureNetwork(), CreateNodes()]
    if config.high_availability:
        steps.append(ConfigureLoadBalancer())
    if config.containerd_config_patches or config.containerd_config_patches_json6902:
        steps.append(PatchContainerd())
    # The add-ons need only the apiserver: they go in while kubeadm init finishes.
    early: list[EarlyStep] = [] if config.networking.disable_default_cni else [InstallCNI()]
    early.append(InstallStorage())
    steps += [WriteKubeadmConfig(), KubeadmInit(early)]
    # Secondary control planes join one by one, and the workers after them. A cluster without
    # workers must run workloads on its control plane(s); with several, only once all joined.
    if config.high_availability:
        steps.append(JoinControlPlanes())
        steps.append(JoinWorkers() if config.workers else RemoveControlPlaneTaint())
    elif config.workers:
        steps.append(JoinWorkers())
    else:
        steps.append(RemoveControlPlaneTaint())
    steps += [ExportKubeconfig(), WaitReady()]
    return steps
