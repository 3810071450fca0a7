"""``python -m pytest_kindcluster cluster delete NAME``: delete one cluster, asked for by name.

The only way besides ``kind delete cluster`` to remove a retained cluster, or one whose owner
the reaper cannot check (it prints this command for those). It deletes only clusters this
plugin made, and refuses one whose owner is still running unless ``--force``:

- a cluster without our labels was made by the kind CLI or another tool; ``kind delete
  cluster`` is the command that owns it (and it also edits ``~/.kube/config``, which we never
  touch);
- a running owner means a pytest session is using the cluster right now.
"""

from __future__ import annotations

import argparse
import sys

from pytest_kindcluster.cluster.lifecycle import KindCluster
from pytest_kindcluster.cluster.ownership import HostView, Owner, OwnerState
from pytest_kindcluster.contract import CLUSTER_LABEL
from pytest_kindcluster.errors import KindClusterError
from pytest_kindcluster.runtime import connect_engine
from pytest_kindcluster.runtime.base import Engine


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cluster = sub.add_parser("cluster", help="manage clusters this plugin made")
    actions = cluster.add_subparsers(dest="action", required=True)
    delete = actions.add_parser(
        "delete",
        help="delete a cluster by name, retained ones included",
        description="Delete a cluster this plugin made: its node containers, their volumes and "
        "its kubeconfig files. Retained clusters and clusters whose owner cannot be checked "
        "are deleted too; that is what this command is for. Clusters made by the kind CLI are "
        "refused (use `kind delete cluster --name NAME`), and so is a cluster whose pytest "
        "session is still running, unless --force.",
    )
    delete.add_argument("name", help="the cluster's name (kind's io.x-k8s.kind.cluster label)")
    delete.add_argument(
        "--force", action="store_true", help="delete it even if its pytest session is running"
    )
    delete.set_defaults(run=_run_delete)


def delete_cluster(
    name: str, *, force: bool = False, engine: Engine, view: HostView | None = None
) -> str:
    """Delete cluster ``name``; returns what was done, raises KindClusterError if refused."""
    containers = engine.resources().labelled(f"{CLUSTER_LABEL}={name}")
    containers = [c for c in containers if c.kind == "container"]
    if not containers:
        raise KindClusterError(f"no cluster named {name!r} in this engine")
    owners = {Owner.from_labels(c.labels) for c in containers}
    if None in owners:
        raise KindClusterError(
            f"cluster {name!r} was not made by pytest-kindcluster (no owner labels); "
            f"delete it with `kind delete cluster --name {name}`"
        )
    for owner in owners:
        assert owner is not None  # checked above
        verdict = owner.verdict(view)
        if verdict.state is OwnerState.ALIVE and not force:
            raise KindClusterError(
                f"cluster {name!r} is in use ({verdict.reason}); stop that pytest session "
                "first, or pass --force"
            )
    KindCluster(name, runtime=engine, images=engine).delete()
    return f"deleted cluster {name} ({len(containers)} container(s))"


def _run_delete(args: argparse.Namespace) -> int:
    try:
        print(delete_cluster(args.name, force=args.force, engine=connect_engine()))
    except KindClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
