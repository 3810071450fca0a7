"""Fail in seconds, with the reason, when an image is missing or is not a kind node image.

A missing image is pulled, as kind does, and the terminal says so. Before any node image runs
(privileged), its files are checked in a container that is created and never started: a kind
node image carries ``/kind/version``. So ``busybox`` or an application image, pulled or local, is
refused before it runs, instead of starting fine and never booting systemd, which would cost the
whole boot timeout before anything is said.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from pytest_kindcluster.errors import ImageError, KindClusterError
from pytest_kindcluster.provision.context import StepContext
from pytest_kindcluster.runtime.base import HostImages, Node

BUILD_HINT = "python -m pytest_kindcluster node-image build"
# How to get a node image, for every error that says one is missing or wrong.
GET_IMAGE = (
    f"build the node image with `{BUILD_HINT}`, `docker load` a saved one, or use a "
    "kindest/node image (`docker pull kindest/node:<version>` where a registry is reachable)"
)
# Every kind node image has it (docs/node-contract.md#files-under-kind); the kubeadm
# config step reads it too.
VERSION_FILE = "/kind/version"
_VERSION = re.compile(r"^v\d+\.\d+\.\d+")


def ensure_images(
    ctx: StepContext, refs: Iterable[str], *, node_images: Iterable[str] = ()
) -> None:
    """Pull each image the engine lacks, as kind does; check that node images are kind's.

    Every image that cannot be had is reported at once. ``node_images`` (run privileged) must
    carry ``/kind/version``, checked without running them.
    """
    missing, problems = [], []
    for ref in sorted(set(refs)):
        if ctx.images.image_id(ref) is not None:
            continue
        ctx.progress.note(ctx.spec.name, f"image {ref} is not in the engine; pulling it")
        started = time.monotonic()
        try:
            ctx.images.pull_image(ref)
        except ImageError as exc:
            missing.append(ref)
            problems.append(str(exc))
            continue
        ctx.progress.note(ctx.spec.name, f"pulled {ref} in {time.monotonic() - started:.1f}s")
    if problems:
        # One line first (what, and what to do), so it reads whole in a one-line summary.
        raise ImageError(
            f"image(s) {', '.join(missing)} not in the Docker engine and not pullable; "
            f"{GET_IMAGE}\n  " + "\n  ".join(problems)
        )
    for ref in sorted(set(node_images)):
        verify_node_image(ctx.images, ref)


def verify_node_image(images: HostImages, ref: str) -> str:
    """The image's Kubernetes version from ``/kind/version``, read without running the image.

    ImageError (saying how to get a node image) when the file is missing or is not a version.
    """
    with tempfile.TemporaryDirectory(prefix="kindcluster-imagecheck-") as tmp:
        copy = Path(tmp) / "version"
        found = images.copy_from_image(ref, VERSION_FILE, copy)
        text = copy.read_text(errors="replace").strip() if found else ""
    if not _VERSION.match(text):
        what = f"its {VERSION_FILE} says {text[:40]!r}" if found else f"it has no {VERSION_FILE}"
        raise ImageError(
            f"{ref} is not a kind node image: {what} (checked before running it, in a "
            f"container that was never started); {GET_IMAGE}"
        )
    return text.splitlines()[0]


def check_kind_node(node: Node) -> None:
    """The started container must keep running and carry /kind/version; say which part failed."""
    image = "?"
    try:
        details = node.details()
        image = details.image
        if details.state != "running":
            raise ImageError(
                f"node {node.name} stopped right after starting (state {details.state}); "
                f"is {image} a kind node image? console:\n{_console(node)}"
            )
        found = node.exec("cat", VERSION_FILE, check=False)
    except ImageError:
        raise
    except KindClusterError as exc:  # the container died between the two calls
        raise ImageError(
            f"node {node.name} cannot run commands ({exc}); is {image} a kind node image? "
            f"console:\n{_console(node)}"
        ) from exc
    if found.exit_code != 0:
        raise ImageError(
            f"{image} is not a kind node image: {node.name} has no {VERSION_FILE} "
            f"({found.output.strip()}); {GET_IMAGE}"
        )


def _console(node: Node) -> str:
    try:
        return node.runtime.logs(node.name, tail=20).rstrip() or "(empty)"
    except KindClusterError as exc:
        return f"(unavailable: {exc})"
