"""Load host images into the nodes (``kind load docker-image``, done better).

Two differences from kind: the archive holds a single platform, because a multi-platform one
breaks ``ctr import`` under Docker's containerd image store (kind issues 3795, 3996, 4224); and
nodes that already hold the same image ID are skipped (kind issue 380) before anything is saved.
"""

from __future__ import annotations

import json
import re
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_kindcluster.errors import ImageError
from pytest_kindcluster.runtime.base import HostImages, Node
from pytest_kindcluster.util.concurrency import run_all

DEFAULT_SNAPSHOTTER = "overlayfs"


def node_image_id(node: Node, image: str) -> str | None:
    """The ID the node's CRI has for ``image``, or None if it has no such image."""
    result = node.exec("crictl", "inspecti", "-o", "json", image, check=False)
    if result.exit_code != 0:
        return None
    try:
        return str(json.loads(result.stdout)["status"]["id"])
    except (ValueError, KeyError, TypeError):
        return None


def snapshotter(node: Node) -> str:
    """The snapshotter the CRI plugin unpacks into; an import must use the same one."""
    dump = node.exec("containerd", "config", "dump", check=False).stdout
    try:
        plugins: dict[str, Any] = tomllib.loads(dump).get("plugins", {})
    except tomllib.TOMLDecodeError:
        plugins = {}
    candidates = (
        plugins.get("io.containerd.cri.v1.images", {}).get("snapshotter"),  # containerd 2.x
        plugins.get("io.containerd.grpc.v1.cri", {}).get("containerd", {}).get("snapshotter"),
    )
    found = next((c for c in candidates if c), None)
    if found is None:
        match = re.search(r'^\s*snapshotter\s*=\s*"([\w-]+)"', dump, re.MULTILINE)
        found = match[1] if match else DEFAULT_SNAPSHOTTER
    return str(found)


def load_image(images: HostImages, nodes: Sequence[Node], image: str, *, arch: str) -> list[str]:
    """Import ``image`` from the host engine into every node lacking it; returns those nodes."""
    image_id = images.image_id(image)
    if image_id is None:
        raise ImageError(f"image {image!r} is not in the Docker engine; build or pull it first")
    present = run_all(lambda n: node_image_id(n, image), list(nodes), what="inspect images")
    targets = [node for node, found in zip(nodes, present, strict=True) if found != image_id]
    if not targets:
        return []
    platform = f"linux/{arch}"
    with tempfile.TemporaryDirectory(prefix="kind-image-") as tmp:
        archive = Path(tmp) / "image.tar"
        images.export_image(image, archive, platform)

        def import_into(node: Node) -> None:
            node.exec(
                "ctr",
                "--namespace=k8s.io",
                "images",
                "import",
                "--digests",
                f"--snapshotter={snapshotter(node)}",
                f"--platform={platform}",
                "-",
                stdin=archive,
            )

        run_all(import_into, targets, what=f"load image {image}")
    return [node.name for node in targets]
