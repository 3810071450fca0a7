"""``python -m pytest_kindcluster``: command-line tools that ship with the plugin."""

from __future__ import annotations

import argparse
import sys

from pytest_kindcluster.cluster import cli as cluster_cli
from pytest_kindcluster.cluster import snapshot_cli
from pytest_kindcluster.nodeimage import cli as node_image_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_kindcluster")
    sub = parser.add_subparsers(dest="command", required=True)
    node_image_cli.add_parser(sub)
    cluster_cli.add_parser(sub)
    snapshot_cli.add_parser(sub)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
