"""``python -m pytest_kindcluster snapshot list|delete|prune`` against the in-memory engine."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pytest_kindcluster.__main__ import main
from pytest_kindcluster.cluster import snapshot_cli
from pytest_kindcluster.cluster.ownership import Owner
from pytest_kindcluster.cluster.snapshot import (
    image_labels,
    image_ref,
    list_snapshots,
    snapshot_inputs,
)
from pytest_kindcluster.contract import NETWORK_CLUSTER_LABEL, SNAPSHOT_NETWORK_LABEL
from pytest_kindcluster.provision import ClusterSpec
from pytest_kindcluster.provision.restore import RestoreNode
from pytest_kindcluster.runtime.fake import FakeRuntime
from tests.support import dead_pid

IMAGE = "pytest-kindcluster/node:v1.37.2"


def stored(fake: FakeRuntime, workers: int, image_id: str = "sha256:node") -> str:
    spec = ClusterSpec("kc-snap-x", IMAGE, workers=workers)
    inputs = {**snapshot_inputs(spec, {IMAGE: image_id}, 1), "kubernetes_version": "v1.37.2"}
    sid = str(inputs["id"])
    plan = spec.node_plan()
    for i, (name, node) in enumerate(plan):
        suffix = name.removeprefix("kc-snap-x-")
        restore = RestoreNode(image_ref(sid, suffix), name, node.role, f"172.18.0.{i + 2}", suffix)
        fake.snapshots().capture_node(
            name,
            restore.image,
            base_image=IMAGE,
            labels=image_labels(inputs, restore, len(plan), "kc-snap-x"),
            extra_files={},
        )
    return sid


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeRuntime:
    engine = FakeRuntime()
    monkeypatch.setattr(snapshot_cli, "connect_engine", lambda: engine)
    return engine


def test_list_shows_id_inputs_size_age_and_status(
    fake: FakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshot", "list"]) == 0
    assert capsys.readouterr().out.startswith("no snapshots")
    one = stored(fake, 0)
    two = stored(fake, 2, image_id="sha256:older")  # made from a node image since rebuilt
    assert main(["snapshot", "list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "ID", "AGE", "SIZE", "TOPOLOGY", "KUBERNETES", "NODE", "IMAGE", "CONFIG", "STATUS",
    ]  # fmt: skip
    by_id = {row.split()[0]: row for row in rows}
    assert set(by_id) == {one, two}
    assert "1 control plane " in by_id[one]
    assert by_id[one].endswith("  ok")
    assert "1 control plane + 2 workers" in by_id[two]
    assert by_id[two].endswith(f"node image {IMAGE} was rebuilt")
    assert f"{IMAGE} (node)" in by_id[one]
    assert "default (" in by_id[one]
    # The columns line up: every row's status starts where the header's STATUS does.
    column = header.index("STATUS")
    assert all(row[column - 2 : column] == "  " and row[column] != " " for row in rows)


def test_list_json_prints_one_object_per_snapshot_and_line(
    fake: FakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = stored(fake, 2)
    assert main(["snapshot", "list", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["id"] == sid
    assert record["topology"] == "1 control plane + 2 workers"
    assert record["image_ids"] == {IMAGE: "sha256:node"}
    assert record["size_bytes"] == 3000
    assert record["status"] == "ok"
    assert 0 <= record["age_seconds"] < 60
    assert [n["role"] for n in record["nodes"]] == ["control-plane", "worker", "worker"]
    assert record["nodes"][0]["name"] == "kc-snap-x-control-plane"


def test_describe_ages_from_the_given_clock(fake: FakeRuntime) -> None:
    stored(fake, 0)
    (snapshot,) = list_snapshots(fake.snapshots())
    later = datetime.now(UTC) + timedelta(hours=3)
    (row,) = snapshot_cli.table([snapshot], fake, later)[1:]
    assert row.split()[1] == "3h00m"


def test_delete_by_id_and_unknown_ids(
    fake: FakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = stored(fake, 0)
    assert main(["snapshot", "delete", "nope"]) == 2
    assert "no snapshot 'nope'" in capsys.readouterr().err
    assert main(["snapshot", "delete", sid[:6]]) == 0
    assert capsys.readouterr().out == f"deleted snapshot {sid}\n"
    assert fake.snapshots().stored == {}


def test_prune_removes_what_no_session_can_use_or_what_is_too_old(
    fake: FakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    current = stored(fake, 0)
    rebuilt = stored(fake, 1, image_id="sha256:older")
    assert main(["snapshot", "prune"]) == 0
    assert capsys.readouterr().out == (
        f"deleted snapshot {rebuilt}: node image {IMAGE} was rebuilt\n"
    )
    assert main(["snapshot", "prune", "--older-than", "7d"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["snapshot", "prune", "--older-than", "0s"]) == 0
    assert capsys.readouterr().out.startswith(f"deleted snapshot {current}: older than 0s")
    assert fake.snapshots().stored == {}


def test_prune_also_removes_networks_that_dead_runs_left(
    fake: FakeRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    here = Owner.of()
    labels = {SNAPSHOT_NETWORK_LABEL: "true", NETWORK_CLUSTER_LABEL: "x"}
    fake.networks["kindcluster-live"] = {**labels, **here.labels()}
    gone = Owner(here.host, dead_pid(), "", here.pid_ns, here.boot_id)
    fake.networks["kindcluster-dead"] = {**labels, **gone.labels()}
    # Another host's run cannot be checked from here: left alone.
    fake.networks["kindcluster-far"] = {**labels, **Owner("elsewhere", 1, "1").labels()}
    assert main(["snapshot", "prune"]) == 0
    assert capsys.readouterr().out == "deleted network kindcluster-dead: its run is gone\n"
    assert set(fake.networks) == {"kindcluster-live", "kindcluster-far"}
