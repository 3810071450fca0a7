"""Remove what crashed runs left behind: clusters (and stray volumes) whose owner is proven gone.

Runs before a cluster is created (so a session that never needs a cluster never touches the
engine), and for ``--kind-prune``. Only resources carrying this plugin's owner label are
considered; clusters made by the kind CLI are never touched. Three rules keep it safe on a host
shared by many sessions:

- **Proof, not guesswork.** A cluster is removed only when its owner is proven gone
  (``ownership.Owner.verdict``). When that cannot be told (another PID namespace, an unreadable
  ``/proc``, labels of an older version), it is left alone, and the report names it with the
  command that removes it. ``--kind-prune-older-than`` (``older_than``) is the escape hatch for
  those: it also removes unknown-owner clusters created longer ago than that.
- **Retained means kept.** A cluster created to be kept (``retain`` other than ``never``, or
  ``--kind-reuse``) is never removed here, by any option; only an explicit delete by name does.
- **Best effort.** Failing to remove someone else's leftovers is a problem in the report (the
  terminal summary shows it as a warning), never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from pytest_kindcluster.cluster.ownership import HostView, Owner, OwnerState, Verdict, age, age_of
from pytest_kindcluster.contract import CLUSTER_LABEL, OWNER_PID_LABEL, RETAIN_LABEL, RUN_ID_LABEL
from pytest_kindcluster.runtime.base import LabelledResources, Resource

log = logging.getLogger(__name__)


def delete_command(cluster: str) -> str:
    """The command that removes one cluster by name (``__main__``'s ``cluster delete``)."""
    return f"python -m pytest_kindcluster cluster delete {cluster}"


@dataclass(frozen=True)
class Leftover:
    """One cluster this plugin made, as its containers' labels describe it."""

    name: str
    verdict: Verdict
    retain: str
    age: timedelta | None
    age_text: str
    containers: tuple[str, ...]

    @property
    def retained(self) -> bool:
        """Created to be kept: never removed by a sweep."""
        return self.retain != "never"

    def describe(self) -> str:
        """One line for the terminal: what it is and what is known of its owner."""
        return (
            f"{self.name} ({len(self.containers)} container(s), age {self.age_text}, "
            f"{self.verdict.reason})"
        )


@dataclass
class SweepReport:
    """What one sweep removed, what it left alone and why, and what it could not remove."""

    removed: list[Leftover] = field(default_factory=list)
    left_alone: list[Leftover] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary: one line per removed or left cluster, then the warnings."""
        out = [f"removed stale cluster {c.describe()}" for c in self.removed]
        out += [
            f"left alone cluster {c.describe()}: cannot tell whether its owner still runs; "
            f"if it is abandoned, remove it with `{delete_command(c.name)}`"
            for c in self.left_alone
        ]
        if self.volumes:
            out.append(f"removed {len(self.volumes)} stray volume(s) of dead runs")
        return out + [f"warning: could not remove {p}" for p in self.problems]


def _combined(verdicts: Iterable[Verdict]) -> Verdict:
    """One verdict for a cluster whose containers might disagree (should not happen)."""
    found = list(verdicts)
    for state in (OwnerState.ALIVE, OwnerState.UNKNOWN):
        for verdict in found:
            if verdict.state is state:
                return verdict
    return found[0]


def survey(
    resources: LabelledResources, *, spare: Collection[str] = (), view: HostView | None = None
) -> list[Leftover]:
    """Every cluster this plugin made (except ``spare``), with what is known of its owner."""
    view = view or HostView()
    by_cluster: dict[str, list[Resource]] = {}
    for item in resources.labelled(OWNER_PID_LABEL):
        cluster = item.labels.get(CLUSTER_LABEL)
        if item.kind == "container" and cluster and cluster not in spare:
            by_cluster.setdefault(cluster, []).append(item)
    found = []
    for name, containers in sorted(by_cluster.items()):
        owners = [Owner.from_labels(c.labels) for c in containers]
        first = containers[0].labels
        found.append(
            Leftover(
                name,
                _combined(o.verdict(view) for o in owners if o is not None),
                first.get(RETAIN_LABEL, "never"),
                age(first),
                age_of(first),
                tuple(sorted(c.name for c in containers)),
            )
        )
    return found


def _old_enough(elapsed: timedelta | None, older_than: timedelta | None) -> bool:
    return older_than is not None and elapsed is not None and elapsed >= older_than


def _removable(labels: Mapping[str, str], verdict: Verdict, older_than: timedelta | None) -> bool:
    if labels.get(RETAIN_LABEL, "never") != "never":
        return False
    if verdict.state is OwnerState.GONE:
        return True
    return verdict.state is OwnerState.UNKNOWN and _old_enough(age(labels), older_than)


def _remove(resources: LabelledResources, item: Resource, report: SweepReport, what: str) -> bool:
    """Remove one resource; a refusal or an engine error is a problem, never an exception."""
    try:
        if resources.remove(item):
            return True
        if item.kind == "container":
            report.problems.append(f"{what}: the engine refused")
    except Exception as exc:  # noqa: BLE001 - someone else's leftover must never fail this run
        report.problems.append(f"{what}: {exc}")
    return False


def sweep(
    resources: LabelledResources,
    *,
    spare: Collection[str] = (),
    older_than: timedelta | None = None,
    view: HostView | None = None,
) -> SweepReport:
    """Remove clusters whose owner is proven gone, then stray volumes of such owners.

    With ``older_than``, clusters whose owner cannot be told are removed too once they are
    that old. Retained clusters and ``spare`` are never removed. Only listing the engine's
    resources can raise (the engine is unreachable); every removal is best effort.

    Volumes normally go with their container (``rm -v``); stray ones come from containers
    removed without ``-v`` or from an engine interrupted mid-create. A volume still in use is
    refused by the engine, which is the check that matters, so that is not a problem.
    """
    view = view or HostView()
    report = SweepReport()
    for cluster in survey(resources, spare=spare, view=view):
        if cluster.retained or cluster.verdict.state is OwnerState.ALIVE:
            continue
        if cluster.verdict.state is OwnerState.UNKNOWN and not _old_enough(cluster.age, older_than):
            report.left_alone.append(cluster)
            continue
        removed = [
            _remove(
                resources,
                Resource("container", name, {}),
                report,
                f"container {name} of stale cluster {cluster.name}",
            )
            for name in cluster.containers
        ]
        if all(removed):
            report.removed.append(cluster)
            log.info("reaped %s", cluster.describe())
    for volume in resources.labelled(OWNER_PID_LABEL):
        if volume.kind != "volume" or volume.labels.get(CLUSTER_LABEL) in spare:
            continue
        owner = Owner.from_labels(volume.labels)
        if owner is None or not _removable(volume.labels, owner.verdict(view), older_than):
            continue
        if _remove(resources, volume, report, f"volume {volume.name}"):
            report.volumes.append(volume.name)
    return report


def remove_run(
    resources: LabelledResources, run_id: str, *, failed: bool
) -> tuple[list[str], list[str]]:
    """Remove the containers of one run that its retention policy does not keep.

    The xdist controller's safety net, after every worker is gone: it catches a cluster a worker
    was still creating when the run was interrupted, and marked clusters the controller never
    heard of. Returns the names of the clusters it removed containers of, and the problems.
    """
    removed: set[str] = set()
    report = SweepReport()
    for item in resources.labelled(f"{RUN_ID_LABEL}={run_id}"):
        if item.kind != "container":
            continue
        retain = item.labels.get(RETAIN_LABEL, "never")
        if retain in ("always", "reuse") or (retain == "on-failure" and failed):
            continue
        if _remove(resources, item, report, f"container {item.name}"):
            removed.add(item.labels.get(CLUSTER_LABEL, item.name))
    return sorted(removed), report.problems
