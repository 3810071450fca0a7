"""Remove what crashed runs left behind: clusters (and stray volumes) whose owner is gone.

Runs before a cluster is created (so a session that never needs a cluster never touches the
engine), and for ``--kind-prune`` at session start. Only resources carrying this plugin's owner
label are considered; clusters made by the kind CLI, or by a run that is still alive, on this
host or any other, are never touched.

Automatic reaping spares clusters created to be kept (``retain`` other than ``never``, or
``--kind-reuse``); ``--kind-prune`` removes those too, as long as their owner is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from pytest_kindcluster.cluster.ownership import Owner, OwnerState, age_of
from pytest_kindcluster.contract import CLUSTER_LABEL, OWNER_PID_LABEL, RETAIN_LABEL, RUN_ID_LABEL
from pytest_kindcluster.runtime.base import LabelledResources, Resource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaleCluster:
    """A cluster whose owner process is gone."""

    name: str
    owner: Owner
    retain: str
    age: str
    containers: tuple[str, ...]

    def describe(self) -> str:
        """One line for the terminal: what it was and why it is stale."""
        kept = f", created with retain={self.retain}" if self.retain != "never" else ""
        return (
            f"{self.name} ({len(self.containers)} container(s), age {self.age}, owner pid "
            f"{self.owner.pid} on {self.owner.host} is gone{kept})"
        )


@dataclass
class SweepReport:
    """What one sweep removed, and what it could not."""

    clusters: list[StaleCluster] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary, one line per removed cluster or problem."""
        out = [f"removed stale cluster {c.describe()}" for c in self.clusters]
        if self.volumes:
            out.append(f"removed {len(self.volumes)} stray volume(s) of dead runs")
        return out + [f"could not remove: {p}" for p in self.problems]


def _retained(labels: Mapping[str, str]) -> bool:
    return labels.get(RETAIN_LABEL, "never") != "never"


def find_stale(
    resources: LabelledResources, *, include_retained: bool, spare: Collection[str] = ()
) -> list[StaleCluster]:
    """Clusters made by this plugin whose owner is gone, grouped from their containers' labels.

    ``spare`` names clusters to leave alone whatever their state (the one a run is about to
    reuse). A cluster whose containers disagree about their owner (should not happen) counts as
    stale only if every one of those owners is gone.
    """
    by_cluster: dict[str, list[Resource]] = {}
    for item in resources.labelled(OWNER_PID_LABEL):
        cluster = item.labels.get(CLUSTER_LABEL)
        if item.kind == "container" and cluster and cluster not in spare:
            by_cluster.setdefault(cluster, []).append(item)
    stale = []
    for name, containers in sorted(by_cluster.items()):
        owners = {Owner.from_labels(c.labels) for c in containers}
        if None in owners or any(o.state() is not OwnerState.GONE for o in owners if o):
            continue
        first = containers[0].labels
        if _retained(first) and not include_retained:
            continue
        owner = Owner.from_labels(first)
        assert owner is not None  # checked above: every container has a valid owner
        stale.append(
            StaleCluster(
                name,
                owner,
                first.get(RETAIN_LABEL, "never"),
                age_of(first),
                tuple(sorted(c.name for c in containers)),
            )
        )
    return stale


def sweep(
    resources: LabelledResources, *, include_retained: bool = False, spare: Collection[str] = ()
) -> SweepReport:
    """Remove stale clusters, then volumes of dead owners that nothing uses any more.

    Volumes normally go with their container (``rm -v``); stray ones come from containers
    removed without ``-v`` or from an engine interrupted mid-create. A volume still in use is
    refused by the engine, which is the check that matters, so it is simply reported.
    """
    report = SweepReport()
    for cluster in find_stale(resources, include_retained=include_retained, spare=spare):
        failed = [
            name
            for name in cluster.containers
            if not resources.remove(Resource("container", name, {}))
        ]
        report.clusters.append(cluster)
        report.problems += [f"container {name} of {cluster.name}" for name in failed]
        log.info("reaped %s", cluster.describe())
    for volume in resources.labelled(OWNER_PID_LABEL):
        if volume.kind != "volume" or volume.labels.get(CLUSTER_LABEL) in spare:
            continue
        owner = Owner.from_labels(volume.labels)
        if owner is None or owner.state() is not OwnerState.GONE:
            continue
        if _retained(volume.labels) and not include_retained:
            continue
        if resources.remove(volume):
            report.volumes.append(volume.name)
    return report


def remove_run(resources: LabelledResources, run_id: str, *, failed: bool) -> list[str]:
    """Remove the containers of one run that its retention policy does not keep.

    The xdist controller's safety net, after every worker is gone: it catches a cluster a worker
    was still creating when the run was interrupted, and marked clusters the controller never
    heard of. Returns the names of the clusters it removed containers of.
    """
    removed: set[str] = set()
    for item in resources.labelled(f"{RUN_ID_LABEL}={run_id}"):
        if item.kind != "container":
            continue
        retain = item.labels.get(RETAIN_LABEL, "never")
        if retain in ("always", "reuse") or (retain == "on-failure" and failed):
            continue
        if resources.remove(item):
            removed.add(item.labels.get(CLUSTER_LABEL, item.name))
    return sorted(removed)
