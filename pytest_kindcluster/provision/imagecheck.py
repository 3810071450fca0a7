"""Fail in seconds, with the reason, when an image is missing or is not a kind node image.

Without these checks a missing image surfaces as an engine error deep in node creation, and an
image that is not a kind node image (``busybox``, an application image) starts fine and then
never boots systemd, which costs the whole boot timeout before anything is said.
"""

from __future__ import annotations

from collections.abc import Iterable

from pytest_kindcluster.errors import ImageError, KindClusterError
from pytest_kindcluster.provision.context import StepContext
from pytest_kindcluster.runtime.base import Node

BUILD_HINT = "python -m pytest_kindcluster node-image build"
# Every kind node image has it (docs/node-contract.md#files-under-kind); the kubeadm
# config step reads it too.
VERSION_FILE = "/kind/version"


def ensure_images(ctx: StepContext, refs: Iterable[str]) -> None:
    """Pull each image the engine lacks, as kind does; report every one that cannot be had."""
    missing, problems = [], []
    for ref in sorted(set(refs)):
        if ctx.images.image_id(ref) is not None:
            continue
        ctx.progress.note(ctx.spec.name, f"image {ref} is not local; pulling it")
        try:
            ctx.images.pull_image(ref)
        except ImageError as exc:
            missing.append(ref)
            problems.append(str(exc))
    if problems:
        # One line first (what, and what to do), so it reads whole in a one-line summary.
        raise ImageError(
            f"image(s) {', '.join(missing)} not in the Docker engine and not pullable; build "
            f"the node image with `{BUILD_HINT}`, or `docker load` it\n  " + "\n  ".join(problems)
        )


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
            f"({found.output.strip()}). Use a kindest/node image, or build one with "
            f"`{BUILD_HINT}`"
        )


def _console(node: Node) -> str:
    try:
        return node.runtime.logs(node.name, tail=20).rstrip() or "(empty)"
    except KindClusterError as exc:
        return f"(unavailable: {exc})"
