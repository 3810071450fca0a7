"""``python -m pytest_kindcluster node-image build``: the node-image builder's command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from pytest_kindcluster.errors import KindClusterError
from pytest_kindcluster.nodeimage import versions
from pytest_kindcluster.nodeimage.build import BuildOptions, build
from pytest_kindcluster.nodeimage.build_progress import BuildProgress
from pytest_kindcluster.nodeimage.cache import default_cache_dir
from pytest_kindcluster.nodeimage.haproxy_image import build_loadbalancer


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node_image = sub.add_parser("node-image", help="build kind-compatible node images offline")
    actions = node_image.add_subparsers(dest="action", required=True)
    b = actions.add_parser(
        "build",
        help="compile the components (cached) and assemble the node image",
        description="Build a kind-compatible node image without any registry. Prints progress "
        "on stderr and the image reference as the last line of stdout.",
    )
    b.add_argument("--tag", default=DEFAULT_NODE_IMAGE, help="image reference to create")
    b.add_argument(
        "--bin-dir",
        type=Path,
        help="assemble from these binaries instead of compiling "
        f"(needs: {', '.join(versions.REQUIRED_BINARIES)}; optional: pause, busybox)",
    )
    b.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="where compiled binaries and the Debian rootfs are cached",
    )
    b.add_argument("--force", action="store_true", help="rebuild even if the image is up to date")
    b.set_defaults(run=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    options = BuildOptions(
        tag=args.tag, bin_dir=args.bin_dir, cache_dir=args.cache_dir, force=args.force
    )
    progress = BuildProgress()
    try:
        ref = build(options, progress)
        # HA clusters' load balancer: its own image and cache key, a no-op when up to date.
        build_loadbalancer(options.cache_dir, progress, force=options.force)
    except KindClusterError as exc:
        print(f"node-image build failed: {exc}", file=sys.stderr)
        return 1
    progress.summary()
    print(ref)
    return 0
