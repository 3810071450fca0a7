"""Export what is needed to debug a cluster, in the layout ``kind export logs`` uses.

Called mostly when something already failed, so it is best effort: a failing piece is written
to ``export-errors.txt`` instead of hiding the original error behind a new one.
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from pytest_kindcluster.concurrency import run_all
from pytest_kindcluster.runtime.base import Node, NodeRuntime

log = logging.getLogger(__name__)

# file name -> command run in the node; the same set kind exports.
NODE_COMMANDS: dict[str, tuple[str, ...]] = {
    "kubernetes-version.txt": ("cat", "/kind/version"),
    "kubeadm.conf": ("cat", "/kind/kubeadm.conf"),
    "journal.log": ("journalctl", "--no-pager"),
    "kubelet.log": ("journalctl", "--no-pager", "-u", "kubelet.service"),
    "containerd.log": ("journalctl", "--no-pager", "-u", "containerd.service"),
    "images.log": ("crictl", "images"),
    "containers.log": ("crictl", "ps", "-a"),
}


def _safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    # /var/log/containers holds absolute symlinks into /var/log/pods; skip what the data
    # filter refuses instead of aborting the whole extraction.
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


def _export_node(runtime: NodeRuntime, node: Node, dest: Path) -> list[str]:
    problems: list[str] = []
    out = dest / node.name
    out.mkdir(parents=True, exist_ok=True)
    try:
        (out / "serial.log").write_text(runtime.logs(node.name))
        details = asdict(node.details())
        (out / "inspect.json").write_text(json.dumps(details, indent=2, default=str))
    except Exception as exc:  # noqa: BLE001 - best effort; recorded below
        problems.append(f"{node.name}: console/inspect: {exc}")
    for filename, argv in NODE_COMMANDS.items():
        try:
            result = node.exec(*argv, check=False)
            (out / filename).write_text(result.output)
        except Exception as exc:  # noqa: BLE001 - a dead node still has a console log
            problems.append(f"{node.name}: {' '.join(argv)}: {exc}")
    try:
        archive = node.exec("tar", "-C", "/var/log", "-cf", "-", ".").raw_stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(out / "var-log", filter=_safe_member)
    except Exception as exc:  # noqa: BLE001 - pod logs are a bonus, never the failure
        problems.append(f"{node.name}: /var/log: {exc}")
    return problems


def export_logs(runtime: NodeRuntime, nodes: Sequence[Node], dest: Path) -> Path:
    """Write each node's console, journals, CRI state and /var/log under ``dest/<node>/``."""
    dest.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    try:
        (dest / "runtime.json").write_text(json.dumps(asdict(runtime.info()), indent=2))
    except Exception as exc:  # noqa: BLE001 - the engine may be what failed
        problems.append(f"runtime info: {exc}")
    if nodes:
        for found in run_all(lambda n: _export_node(runtime, n, dest), list(nodes), what="logs"):
            problems += found
    if problems:
        (dest / "export-errors.txt").write_text("\n".join(problems) + "\n")
        log.warning("log export to %s was incomplete: %d problem(s)", dest, len(problems))
    return dest
