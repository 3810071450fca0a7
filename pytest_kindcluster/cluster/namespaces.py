"""Per-test namespaces, and the rule that removes those a crashed run left behind.

Every namespace the ``kind_namespace`` fixture makes carries the label
``app.kubernetes.io/managed-by=pytest-kindcluster`` and the run id, and is annotated with its
owner: host, pid and process start time (as clusters are, see :mod:`.ownership`). Its own run
deletes it after the test. A run that is killed cannot, so the first ``kind_namespace`` of every
later run sweeps the cluster, and deletes a labelled namespace of another run when:

- its owner ran on this host and that process is provably gone (the pid does not exist, or
  now belongs to a process that started at another time); or
- its owner is unknown here (another host, a CI runner long gone) and it is older than
  :data:`STALE_AFTER`; no test namespace is meant to live a day.

A namespace that is already terminating, or whose owner still runs, is left alone; so is every
namespace without the label. Credentials that may not list namespaces skip the sweep, and the
run says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_kindcluster.cluster.ownership import Owner, OwnerState
from pytest_kindcluster.contract import RUN_ID_LABEL
from pytest_kindcluster.kube import namespaces

MANAGED_BY = ("app.kubernetes.io/managed-by", "pytest-kindcluster")
STALE_AFTER = timedelta(hours=24)


def metadata(owner: Owner, run_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """Labels (selectable) and annotations (free-form: host names) of a test namespace."""
    return {MANAGED_BY[0]: MANAGED_BY[1], RUN_ID_LABEL: run_id}, owner.labels()


def is_stale(ns: namespaces.NamespaceInfo, run_id: str, now: datetime) -> bool:
    """The rule in the module docstring, for one namespace."""
    if ns.terminating or ns.labels.get(RUN_ID_LABEL) == run_id:
        return False
    owner = Owner.from_labels(ns.annotations)
    state = owner.state() if owner else OwnerState.UNKNOWN
    if state is OwnerState.GONE:
        return True
    old = ns.created is not None and now - ns.created > STALE_AFTER
    return state is OwnerState.UNKNOWN and old


@dataclass
class Sweep:
    """What one sweep did: the namespaces it deleted, or that it could not look."""

    deleted: list[str] = field(default_factory=list)
    forbidden: bool = False

    def lines(self) -> list[str]:
        """For the terminal: nothing when there was nothing to do."""
        if self.forbidden:
            return ["cannot list namespaces (forbidden): leftovers of crashed runs not swept"]
        if self.deleted:
            return [f"deleted namespaces left by crashed runs: {', '.join(self.deleted)}"]
        return []


def sweep(api: Any, run_id: str, *, now: datetime | None = None) -> Sweep:
    """Delete the labelled namespaces that :func:`is_stale` says are leftovers."""
    found = namespaces.list_labelled(api, "=".join(MANAGED_BY))
    if found is None:
        return Sweep(forbidden=True)
    moment = now or datetime.now(UTC)
    done = Sweep()
    for ns in found:
        if is_stale(ns, run_id, moment) and namespaces.delete(api, ns.name):
            done.deleted.append(ns.name)
    return done
