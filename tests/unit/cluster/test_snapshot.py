"""Snapshot ids, the labels that record a snapshot, and what prune removes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pytest_kindcluster.cluster.snapshot import (
    SNAPSHOT_FORMAT,
    Snapshot,
    delete,
    format_age,
    group,
    image_labels,
    image_ref,
    list_snapshots,
    parse_age,
    prune_reason,
    refuse_high_availability,
    resolve,
    snapshot_inputs,
)
from pytest_kindcluster.config import ClusterConfig, NodeConfig, load_config
from pytest_kindcluster.contract import SNAPSHOT_NODES_LABEL
from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.provision import ClusterSpec
from pytest_kindcluster.provision.restore import RestoreNode
from pytest_kindcluster.runtime.base import SnapshotImage
from pytest_kindcluster.runtime.fake import FakeRuntime

IMAGE = "pytest-kindcluster/node:v1.37.2"
IDS = {IMAGE: "sha256:aaa"}


def inputs_of(spec: ClusterSpec, ids: dict[str, str] = IDS, cgroup: int = 2) -> dict[str, object]:
    return snapshot_inputs(spec, ids, cgroup)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_id_digests_image_ids_normalized_config_cgroup_and_format(tmp_path: Path) -> None:
    one = inputs_of(ClusterSpec("a", IMAGE))
    assert one["id"] == inputs_of(ClusterSpec("another-name", IMAGE))["id"]  # name is outside
    assert len(str(one["id"])) == 16
    assert one["topology"] == "1 control plane"
    workers = inputs_of(ClusterSpec("a", IMAGE, workers=2))
    assert workers["id"] != one["id"]
    assert workers["topology"] == "1 control plane + 2 workers"
    assert inputs_of(ClusterSpec("a", IMAGE), {IMAGE: "sha256:bbb"})["id"] != one["id"]
    assert inputs_of(ClusterSpec("a", IMAGE), cgroup=1)["id"] != one["id"]
    # The workers count folded into a config, and the same config from a file (whose name,
    # path and key order do not matter), are the same inputs.
    as_config = ClusterSpec(
        "a", IMAGE, config=ClusterConfig(nodes=(NodeConfig(), NodeConfig(role="worker"),
                                                NodeConfig(role="worker")))
    )  # fmt: skip
    assert inputs_of(as_config)["id"] == workers["id"]
    head = "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
    a = write(tmp_path / "a.yaml", head + "name: x\nnodes:\n- role: control-plane\n"
              "  labels: {tier: a, zone: b}\n")  # fmt: skip
    b = write(tmp_path / "b.yaml", head + "nodes:\n- labels: {zone: b, tier: a}\n"
              "  role: control-plane\n")  # fmt: skip
    from_a = inputs_of(ClusterSpec("a", IMAGE, config=load_config(a)))
    from_b = inputs_of(ClusterSpec("a", IMAGE, config=load_config(b)))
    assert from_a["id"] == from_b["id"] != one["id"]
    assert from_a["config_file"] == str(a)


def test_ha_is_refused_up_front_with_the_reason() -> None:
    ha = ClusterConfig(nodes=(NodeConfig(), NodeConfig(), NodeConfig()))
    with pytest.raises(ConfigError, match=r"one control plane, this config has 3.*kind issue 1689"):
        refuse_high_availability(ha)
    refuse_high_availability(ClusterConfig())


def store_snapshot(fake: FakeRuntime, spec: ClusterSpec, *, drop: str | None = None) -> str:
    """Labelled images as a capture leaves them, without a cluster."""
    inputs = inputs_of(spec)
    sid = str(inputs["id"])
    plan = spec.node_plan()
    for i, (name, node) in enumerate(plan):
        suffix = name.removeprefix(f"{spec.name}-")
        restore = RestoreNode(image_ref(sid, suffix), name, node.role, f"172.18.0.{i + 2}", suffix)
        labels = image_labels(inputs, restore, len(plan), spec.name)
        if suffix != drop:
            fake.snapshots().capture_node(
                name, restore.image, base_image=IMAGE, labels=labels, extra_files={}
            )
    return sid


def test_labels_read_back_as_a_snapshot_and_gaps_are_problems() -> None:
    fake = FakeRuntime(images=IDS)
    sid = store_snapshot(fake, ClusterSpec("kc-snap-1", IMAGE, workers=2))
    (snapshot,) = list_snapshots(fake.snapshots())
    assert snapshot.id == sid
    assert snapshot.problem is None
    assert snapshot.cluster == "kc-snap-1"
    assert [(n.name, n.role, n.suffix) for n in snapshot.nodes] == [
        ("kc-snap-1-control-plane", "control-plane", "control-plane"),
        ("kc-snap-1-worker", "worker", "worker"),
        ("kc-snap-1-worker2", "worker", "worker2"),
    ]
    assert snapshot.nodes[0].image == f"pytest-kindcluster/snapshot:{sid}-control-plane"
    assert snapshot.size == 3000
    age = snapshot.age()
    assert age is not None
    assert age < timedelta(minutes=1)
    assert snapshot.mismatch(inputs_of(ClusterSpec("x", IMAGE, workers=2))) == []
    assert snapshot.mismatch(inputs_of(ClusterSpec("x", IMAGE, workers=2), {IMAGE: "sha256:b"}))

    partial = FakeRuntime(images=IDS)
    store_snapshot(partial, ClusterSpec("kc-snap-1", IMAGE, workers=2), drop="worker2")
    assert list_snapshots(partial.snapshots())[0].problem == "incomplete: 2 of 3 node images"
    broken = SnapshotImage("x:y", "sha256:x", {"dev.pytest-kindcluster.snapshot": "bad"}, 1)
    (unreadable,) = group([broken])
    assert unreadable.problem is not None
    assert "unreadable labels" in unreadable.problem


def test_mismatch_names_what_changed() -> None:
    fake = FakeRuntime(images=IDS)
    store_snapshot(fake, ClusterSpec("kc-snap-1", IMAGE))
    (snapshot,) = list_snapshots(fake.snapshots())
    wanted = dict(inputs_of(ClusterSpec("x", IMAGE), {IMAGE: "sha256:bbbbbbbbbbbbbbbbbbbb"}, 1))
    wanted["format"] = 99
    wanted["config_digest"] = "other"
    assert snapshot.mismatch(wanted) == [
        f"snapshot format {SNAPSHOT_FORMAT}, this plugin makes 99",
        f"node image {IMAGE} is now sha256:bbbbbbbbbbbb, was sha256:aaa",
        "the cluster config differs",
        "the engine now runs cgroup v1",
    ]


def test_resolve_by_id_or_unique_prefix_and_delete_keeps_images_in_use() -> None:
    fake = FakeRuntime(images=IDS)
    sid = store_snapshot(fake, ClusterSpec("kc-snap-1", IMAGE))
    other = store_snapshot(fake, ClusterSpec("kc-snap-2", IMAGE, workers=1))
    store = fake.snapshots()
    assert resolve(store, sid).id == sid
    assert resolve(store, other[:6]).id == other
    with pytest.raises(ConfigError, match="no snapshot 'nope'"):
        resolve(store, "nope")
    with pytest.raises(ConfigError, match="no snapshot"):
        resolve(store, sid[:2])  # too short to be a prefix
    store.in_use.add(image_ref(sid, "control-plane"))
    assert delete(store, resolve(store, sid)) == [image_ref(sid, "control-plane")]
    assert delete(store, resolve(store, other)) == []
    assert [s.id for s in list_snapshots(store)] == [sid]


def snapshot_made(
    created: datetime, image_id: str = "sha256:aaa", made_in: int = SNAPSHOT_FORMAT
) -> Snapshot:
    inputs = {"image_ids": {IMAGE: image_id}, "format": made_in}
    return Snapshot("abcd", inputs, created, "kc-snap-1", (), 0)


def test_prune_removes_snapshots_of_gone_or_rebuilt_images_and_old_ones() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    images = FakeRuntime(images=IDS)
    fresh = snapshot_made(now - timedelta(hours=1))
    assert prune_reason(fresh, images, None, now) is None
    assert prune_reason(fresh, images, timedelta(days=7), now) is None
    old = snapshot_made(now - timedelta(days=8))
    assert prune_reason(old, images, timedelta(days=7), now) == "older than 7d0h (8d0h)"
    older_plugin = snapshot_made(now, made_in=SNAPSHOT_FORMAT - 1)
    assert prune_reason(older_plugin, images, None, now) == (
        f"made in snapshot format {SNAPSHOT_FORMAT - 1}, this plugin makes {SNAPSHOT_FORMAT}"
    )
    rebuilt = snapshot_made(now, "sha256:old")
    assert prune_reason(rebuilt, images, None, now) == f"node image {IMAGE} was rebuilt"
    assert prune_reason(fresh, FakeRuntime(images={}), None, now) == f"node image {IMAGE} is gone"
    partial = Snapshot("abcd", {}, now, "?", (), 0, problem="incomplete: 1 of 3 node images")
    assert prune_reason(partial, images, None, now) == "incomplete: 1 of 3 node images"


def test_ages_read_and_print() -> None:
    assert parse_age("7d") == timedelta(days=7)
    assert parse_age("12h") == parse_age("0.5d")
    assert parse_age("30m") == timedelta(minutes=30)
    assert parse_age("3") == timedelta(days=3)
    for bad in ("soon", "-1d"):
        with pytest.raises(ConfigError):
            parse_age(bad)
    assert [format_age(timedelta(seconds=s)) for s in (5, 600, 11_520, 190_000)] == [
        "5s", "10m", "3h12m", "2d4h",
    ]  # fmt: skip


def test_image_labels_are_json_readable() -> None:
    inputs = inputs_of(ClusterSpec("a", IMAGE))
    node = RestoreNode(
        "r:t", "kc-snap-1-control-plane", "control-plane", "172.18.0.2", "control-plane"
    )
    labels = image_labels(inputs, node, 1, "kc-snap-1")
    assert labels[SNAPSHOT_NODES_LABEL] == "1"
    assert json.loads(labels["dev.pytest-kindcluster.snapshot.node"])["ipv4"] == "172.18.0.2"
    assert json.loads(labels["dev.pytest-kindcluster.snapshot.inputs"])["id"] == inputs["id"]


def test_only_the_snapshot_repositorys_tags_make_up_a_snapshot() -> None:
    fake = FakeRuntime(images=IDS)
    sid = store_snapshot(fake, ClusterSpec("kc-snap-1", IMAGE))
    store = fake.snapshots()
    original = store.stored[image_ref(sid, "control-plane")]
    # The user tags it elsewhere (or builds FROM it): the labels come along, the tag is theirs.
    store.stored["mine/copy:1"] = SnapshotImage("mine/copy:1", "sha256:c", original.labels, 1)
    (snapshot,) = list_snapshots(store)
    assert snapshot.problem is None
    assert snapshot.images == [image_ref(sid, "control-plane")]
    assert delete(store, snapshot) == []
    assert list(store.stored) == ["mine/copy:1"]
    # A second tag in the repository with the same labels is one image too many.
    store.stored = {}
    store_snapshot(fake, ClusterSpec("kc-snap-1", IMAGE))
    copy = SnapshotImage(image_ref(sid, "again"), "sha256:c", original.labels, 1)
    store.stored[copy.ref] = copy
    assert list_snapshots(store)[0].problem == "2 node images where its labels say 1"
