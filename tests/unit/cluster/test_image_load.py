"""Image loading: single platform, skip nodes that already hold the image ID."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from pytest_kindcluster.cluster.image_load import load_image, snapshotter
from pytest_kindcluster.errors import ImageError
from pytest_kindcluster.runtime.base import ExecResult, Node, NodeSpec
from pytest_kindcluster.runtime.fake import FakeRuntime


class ImageAwareFake(FakeRuntime):
    """Answers crictl inspecti from a per-node table of image IDs."""

    def __init__(self) -> None:
        super().__init__(images={"app:1": "sha256:aaa"})
        self.node_images: dict[str, str] = {}

    def exec(
        self,
        node: str,
        argv: Sequence[str],
        *,
        stdin: bytes | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        result = super().exec(node, argv, stdin=stdin, env=env)
        if tuple(argv[:2]) == ("crictl", "inspecti"):
            if node not in self.node_images:
                return ExecResult(tuple(argv), 1, b"", b"not found")
            body = json.dumps({"status": {"id": self.node_images[node]}}).encode()
            return ExecResult(tuple(argv), 0, body)
        if tuple(argv[:2]) == ("containerd", "config"):
            return ExecResult(
                tuple(argv),
                0,
                b'[plugins."io.containerd.cri.v1.images"]\n  snapshotter = "native"\n',
            )
        return result


def nodes(fake: FakeRuntime, *names: str) -> list[Node]:
    return [fake.run_node(NodeSpec(n, "demo", "worker", "img", "kind")) for n in names]


def test_loads_only_where_missing_or_different_with_one_platform() -> None:
    fake = ImageAwareFake()
    targets = nodes(fake, "n1", "n2", "n3")
    fake.node_images = {"n1": "sha256:aaa", "n2": "sha256:old"}
    loaded = load_image(fake, targets, "app:1", arch="arm64")
    assert loaded == ["n2", "n3"]
    assert fake.exports == [("app:1", "linux/arm64")]
    imports = [argv for argv in fake.commands() if argv[:2] == ("ctr", "--namespace=k8s.io")]
    assert len(imports) == 2
    for argv in imports:
        assert "--platform=linux/arm64" in argv
        assert "--all-platforms" not in argv
        assert "--snapshotter=native" in argv
    assert fake.stdin_of("ctr") == "archive of app:1"


def test_nothing_is_exported_when_every_node_has_the_image() -> None:
    fake = ImageAwareFake()
    targets = nodes(fake, "n1", "n2")
    fake.node_images = {"n1": "sha256:aaa", "n2": "sha256:aaa"}
    assert load_image(fake, targets, "app:1", arch="amd64") == []
    assert fake.exports == []


def test_unknown_host_image_is_an_image_error() -> None:
    fake = ImageAwareFake()
    with pytest.raises(ImageError, match="nope:1"):
        load_image(fake, nodes(fake, "n1"), "nope:1", arch="amd64")


def test_snapshotter_falls_back_to_overlayfs(tmp_path: Path) -> None:
    fake = FakeRuntime()
    (node,) = nodes(fake, "n1")
    fake.fail(("containerd", "config"))
    assert snapshotter(node) == "overlayfs"
