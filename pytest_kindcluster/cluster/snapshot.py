"""Snapshots of ready clusters: their ids, their labels, and the engine's inventory of them.

A snapshot is one local image per node (``pytest-kindcluster/snapshot:<id>-<node>``). Its id is
a digest of everything that decides what a cold create would produce: the node images' IDs, the
normalized cluster config (the workers count is part of it), the engine's cgroup version (it
changes the kubelet configuration) and :data:`SNAPSHOT_FORMAT`. The labels of the images are
the only record: any process can list, use and delete snapshots.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock

from pytest_kindcluster.cluster.ownership import CREATED_FORMAT
from pytest_kindcluster.config import ClusterConfig
from pytest_kindcluster.contract import (
    SNAPSHOT_CREATED_LABEL,
    SNAPSHOT_FORMAT_LABEL,
    SNAPSHOT_INPUTS_LABEL,
    SNAPSHOT_LABEL,
    SNAPSHOT_NODE_LABEL,
    SNAPSHOT_NODES_LABEL,
    SNAPSHOT_REPOSITORY,
)
from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.provision import ClusterSpec
from pytest_kindcluster.provision.restore import RestoreNode
from pytest_kindcluster.runtime.base import HostImages, Role, SnapshotImage, SnapshotStore
from pytest_kindcluster.util.duration import parse_duration
from pytest_kindcluster.util.hashing import digest

# Bumped whenever what a snapshot holds, or how it boots, changes: older snapshots then no
# longer match any inputs and are made again (2: unpacked image layers stay in the image; 3: the
# kubelet waits in ExecStartPre, not on a condition; 4: the cold create's kubeadm config changed:
# ECDSA keys, no leader election with one control plane, no kubelet-finalize).
SNAPSHOT_FORMAT = 4
# The capture cluster's name, hence every in-cluster name of the snapshot's clones.
CAPTURE_PREFIX = "kc-snap-"
LOCK_FILE = "pytest-kindcluster-snapshots.lock"


def _plain(value: Any) -> Any:
    """A JSON-ready, order-independent form of a config value (mappings sorted by key)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value) if f.compare}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def normalized_config(config: ClusterConfig) -> dict[str, Any]:
    """The config as plain data, without what does not reach the cluster (its name, its file)."""
    plain = _plain(config)
    plain.pop("name", None)
    return dict(plain)


def topology(config: ClusterConfig) -> str:
    """``1 control plane + 2 workers``."""
    planes, workers = len(config.control_planes), len(config.workers)
    text = f"{planes} control plane{'s' if planes > 1 else ''}"
    return text + (f" + {workers} worker{'s' if workers > 1 else ''}" if workers else "")


def refuse_high_availability(config: ClusterConfig) -> None:
    """Several control planes cannot come back with new addresses: say so up front."""
    if config.high_availability:
        raise ConfigError(
            "snapshots support one control plane, this config has "
            f"{len(config.control_planes)}: etcd's peer URLs hold each member's IP address, and "
            "a restored member with a new address cannot rejoin the others (kind issue 1689). "
            "Create HA clusters without --kind-snapshot."
        )


def snapshot_inputs(
    spec: ClusterSpec, image_ids: Mapping[str, str], cgroup_version: int
) -> dict[str, Any]:
    """What a snapshot of ``spec`` depends on, with its id under ``"id"``."""
    config = spec.cluster_config
    config_digest = digest(normalized_config(config))
    ids = {ref: image_ids[ref] for ref in sorted(node_images(spec))}
    inputs: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "node_image": spec.image,
        "image_ids": ids,
        "config_digest": config_digest,
        "cgroup_version": cgroup_version,
        "topology": topology(config),
        "config_file": str(config.source) if config.source else None,
    }
    inputs["id"] = digest(SNAPSHOT_FORMAT, config_digest, ids, cgroup_version)
    return inputs


def node_images(spec: ClusterSpec) -> set[str]:
    """Every image the cluster's nodes run."""
    return {node.image or spec.image for _, node in spec.node_plan()}


def image_ref(snapshot_id: str, suffix: str) -> str:
    """``pytest-kindcluster/snapshot:<id>-<node suffix>``."""
    return f"{SNAPSHOT_REPOSITORY}:{snapshot_id}-{suffix}"


def image_labels(
    inputs: Mapping[str, Any], node: RestoreNode, nodes: int, cluster: str
) -> dict[str, str]:
    """The labels of one node's image: the snapshot's inputs and this node at capture."""
    facts = {
        "name": node.name,
        "role": node.role,
        "ipv4": node.ipv4,
        "suffix": node.suffix,
        "cluster": cluster,
    }
    return {
        SNAPSHOT_LABEL: str(inputs["id"]),
        SNAPSHOT_FORMAT_LABEL: str(inputs["format"]),
        SNAPSHOT_CREATED_LABEL: datetime.now(UTC).strftime(CREATED_FORMAT),
        SNAPSHOT_INPUTS_LABEL: json.dumps(dict(inputs), sort_keys=True),
        SNAPSHOT_NODE_LABEL: json.dumps(facts, sort_keys=True),
        SNAPSHOT_NODES_LABEL: str(nodes),
    }


@dataclass(frozen=True)
class Snapshot:
    """One snapshot as the engine holds it; ``problem`` says why it cannot be used."""

    id: str
    inputs: Mapping[str, Any]
    created: datetime | None
    cluster: str
    nodes: tuple[RestoreNode, ...]
    size: int
    problem: str | None = None

    @property
    def images(self) -> list[str]:
        """The image of every node."""
        return [n.image for n in self.nodes]

    def age(self, now: datetime | None = None) -> timedelta | None:
        """Time since the capture."""
        if self.created is None:
            return None
        return (now or datetime.now(UTC)) - self.created

    def mismatch(self, wanted: Mapping[str, Any]) -> list[str]:
        """How these inputs differ from ``wanted`` (empty when the snapshot fits)."""
        found = self.inputs
        out = []
        if found.get("format") != wanted["format"]:
            out.append(
                f"snapshot format {found.get('format')}, this plugin makes {wanted['format']}"
            )
        for ref, image_id in wanted["image_ids"].items():
            was = (found.get("image_ids") or {}).get(ref)
            if was != image_id:
                out.append(f"node image {ref} is now {image_id[:19]}, was {str(was)[:19]}")
        if found.get("config_digest") != wanted["config_digest"]:
            out.append("the cluster config differs")
        if found.get("cgroup_version") != wanted["cgroup_version"]:
            out.append(f"the engine now runs cgroup v{wanted['cgroup_version']}")
        return out


def _node(image: SnapshotImage) -> RestoreNode:
    facts = json.loads(image.labels[SNAPSHOT_NODE_LABEL])
    role: Role = "control-plane" if facts["role"] == "control-plane" else "worker"
    return RestoreNode(image.ref, facts["name"], role, facts["ipv4"], facts["suffix"])


def group(images: Iterable[SnapshotImage]) -> list[Snapshot]:
    """Snapshots from their images' labels; unreadable or partial sets carry a problem."""
    by_id: dict[str, list[SnapshotImage]] = {}
    for image in images:
        by_id.setdefault(image.labels.get(SNAPSHOT_LABEL, ""), []).append(image)
    out = []
    for snapshot_id, members in sorted(by_id.items()):
        first = members[0].labels
        problem = None
        try:
            inputs = json.loads(first[SNAPSHOT_INPUTS_LABEL])
            nodes = tuple(sorted((_node(m) for m in members), key=lambda n: n.image))
            created: datetime | None = datetime.strptime(
                first[SNAPSHOT_CREATED_LABEL], CREATED_FORMAT
            ).replace(tzinfo=UTC)
            expected = int(first[SNAPSHOT_NODES_LABEL])
            cluster = json.loads(first[SNAPSHOT_NODE_LABEL])["cluster"]
        except (KeyError, ValueError) as exc:
            inputs, nodes, created, expected, cluster = {}, (), None, 0, "?"
            problem = f"unreadable labels ({type(exc).__name__}: {exc})"
        if problem is None and len(nodes) < expected:
            problem = f"incomplete: {len(nodes)} of {expected} node images"
        elif problem is None and len(nodes) > expected:
            problem = f"{len(nodes)} node images where its labels say {expected}"
        elif problem is None and sum(n.role == "control-plane" for n in nodes) != 1:
            problem = "it does not have exactly one control-plane node"
        size = sum(m.size for m in members)
        out.append(Snapshot(snapshot_id, inputs, created, cluster, nodes, size, problem))
    return out


def _ours(images: Iterable[SnapshotImage]) -> list[SnapshotImage]:
    # An image derived from a snapshot image, or a snapshot image tagged elsewhere, inherits
    # the labels; only the snapshot repository's tags make up snapshots.
    return [i for i in images if i.ref.startswith(f"{SNAPSHOT_REPOSITORY}:")]


def list_snapshots(store: SnapshotStore) -> list[Snapshot]:
    """Every snapshot in the engine, complete or not."""
    return group(_ours(store.images(SNAPSHOT_LABEL)))


def find(store: SnapshotStore, snapshot_id: str) -> Snapshot | None:
    """The snapshot with exactly this id, if the engine has any image of it."""
    found = group(_ours(store.images(f"{SNAPSHOT_LABEL}={snapshot_id}")))
    return found[0] if found else None


def resolve(store: SnapshotStore, text: str) -> Snapshot:
    """A snapshot by its id or an unambiguous prefix of at least 4 characters (as docker)."""
    snapshots = list_snapshots(store)
    exact = [s for s in snapshots if s.id == text]
    matches = exact or ([s for s in snapshots if s.id.startswith(text)] if len(text) >= 4 else [])
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ConfigError(
            f"no snapshot {text!r}; `python -m pytest_kindcluster snapshot list` shows them"
        )
    raise ConfigError(f"{text!r} matches several snapshots: {', '.join(s.id for s in matches)}")


def snapshot_lock(timeout: float) -> FileLock:
    """The machine's lock on making and removing snapshots: the first session to need one makes
    it while the others wait, then use it; a delete never takes images a capture is writing.

    One file for every snapshot, never removed: a lock file removed while another process waits
    on it would let a third one in; per-id files would pile up.
    """
    return FileLock(str(Path(tempfile.gettempdir()) / LOCK_FILE), timeout=timeout)


def delete(store: SnapshotStore, snapshot: Snapshot) -> list[str]:
    """Remove every image of the snapshot; returns those a container still uses."""
    refs = snapshot.images or [
        image.ref for image in _ours(store.images(f"{SNAPSHOT_LABEL}={snapshot.id}"))
    ]
    return [ref for ref in refs if not store.remove_image(ref)]


def prune_reason(
    snapshot: Snapshot, images: HostImages, older_than: timedelta | None, now: datetime
) -> str | None:
    """Why ``snapshot prune`` removes this snapshot, or None to keep it."""
    if snapshot.problem:
        return snapshot.problem
    stale = staleness(snapshot, images)
    if stale:
        return stale
    age = snapshot.age(now)
    if older_than is not None and age is not None and age > older_than:
        return f"older than {format_age(older_than)} ({format_age(age)})"
    return None


def staleness(snapshot: Snapshot, images: HostImages) -> str | None:
    """Why no session can use the snapshot any more: another plugin version made it, or its node
    image reference is gone or now names another image (rebuilt; the old image lives on below
    the snapshot's images)."""
    made = snapshot.inputs.get("format")
    if made != SNAPSHOT_FORMAT:
        return f"made in snapshot format {made}, this plugin makes {SNAPSHOT_FORMAT}"
    for ref, image_id in (snapshot.inputs.get("image_ids") or {}).items():
        current = images.image_id(ref)
        if current is None:
            return f"node image {ref} is gone"
        if current != image_id:
            return f"node image {ref} was rebuilt"
    return None


def format_age(age: timedelta) -> str:
    """``45s``, ``12m``, ``3h12m``, ``2d3h``."""
    seconds = max(int(age.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60:02d}m"
    return f"{hours // 24}d{hours % 24}h"


def parse_age(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``90s``, ``1h30m`` (a bare number counts days; zero is allowed)."""
    try:
        return parse_duration(text, zero_ok=True, bare_unit="d")
    except ValueError as exc:
        raise ConfigError(f"cannot read an age from {text!r}: {exc}") from None
