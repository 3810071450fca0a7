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
    Concurrently,
    Step,
    StepContext,
    run_steps,
)
from pytest_kindcluster.provision.kubeadm import (
    JoinWorkers,
    KubeadmInit,
    RemoveControlPlaneTaint,
    WriteKubeadmConfig,
)
from pytest_kindcluster.provision.nodes import CreateNodes, EnsureNetwork, Preflight

__all__ = ["ClusterSpec", "Step", "StepContext", "build_steps", "run_steps"]


def build_steps(spec: ClusterSpec) -> list[Step]:
    """The create flow for ``spec``, in order (KIND_CONTRACT section 2)."""
    steps: list[Step] = [
        Preflight(),
        EnsureNetwork(),
        CreateNodes(),
        WriteKubeadmConfig(),
        KubeadmInit(),
    ]
    # Everything after init needs only the apiserver, not each other.
    after_init: list[Step] = [InstallCNI(), InstallStorage()]
    after_init.append(JoinWorkers() if spec.workers else RemoveControlPlaneTaint())
    steps += [Concurrently(*after_init), ExportKubeconfig(), WaitReady()]
    return steps
