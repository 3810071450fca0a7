"""Export what is needed to debug a cluster, in the layout ``kind export logs`` uses.

Called mostly when something already failed, so it is best effort: a failing piece is written
to ``export-errors.txt`` instead of hiding the original error behind a new one. Everything
written is redacted (:mod:`pytest_kindcluster.util.redact`): CI systems publish these directories.

Layout: ``runtime.json``, ``pods.txt``/``nodes.txt``/``events.txt`` (the cluster as kubectl
sees it), then per node ``<node>/``: ``serial.log`` (docker logs), ``inspect.json`` (docker
inspect), the journals of the node, kubelet and containerd, CRI state, and ``var-log/`` (the
node's /var/log, including every pod's logs under ``var-log/pods``).
"""

from __future__ import annotations

import io
import json
import logging
import tarfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from pytest_kindcluster.provision.kubeadm import kubectl_argv
from pytest_kindcluster.runtime.base import Node, NodeRuntime
from pytest_kindcluster.util.concurrency import run_all
from pytest_kindcluster.util.redact import redact

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
# file name -> kubectl arguments, run once in the first control plane.
CLUSTER_COMMANDS: dict[str, tuple[str, ...]] = {
    "pods.txt": ("get", "pods", "--all-namespaces", "-o", "wide"),
    "nodes.txt": ("get", "nodes", "-o", "wide"),
    "events.txt": ("get", "events", "--all-namespaces", "--sort-by=.lastTimestamp"),
}
# Larger files under var-log are left as they are: reading them would cost more than they are
# likely to leak (the container logs that matter are rotated well below this).
REDACT_LIMIT = 32 << 20


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
        (out / "serial.log").write_text(redact(runtime.logs(node.name)))
        details = node.details()
        # The engine's whole answer, as `docker inspect` prints it; the summary elsewhere.
        raw = details.inspect or asdict(details)
        (out / "inspect.json").write_text(redact(json.dumps(raw, indent=2, default=str)))
    except Exception as exc:  # noqa: BLE001 - best effort; recorded below
        problems.append(f"{node.name}: console/inspect: {exc}")
    if node.role == "external-load-balancer":
        return problems  # haproxy alone: no systemd, no journal, no CRI
    for filename, argv in NODE_COMMANDS.items():
        try:
            result = node.exec(*argv, check=False)
            (out / filename).write_text(redact(result.output))
        except Exception as exc:  # noqa: BLE001 - a dead node still has a console log
            problems.append(f"{node.name}: {' '.join(argv)}: {exc}")
    try:
        archive = node.exec("tar", "-C", "/var/log", "-cf", "-", ".").raw_stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(out / "var-log", filter=_safe_member)
        _redact_tree(out / "var-log")
    except Exception as exc:  # noqa: BLE001 - pod logs are a bonus, never the failure
        problems.append(f"{node.name}: /var/log: {exc}")
    return problems


def _redact_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size < REDACT_LIMIT:
            text = path.read_bytes().decode(errors="replace")
            cleaned = redact(text)
            if cleaned != text:
                path.write_text(cleaned)


def _export_cluster(nodes: Sequence[Node], dest: Path) -> list[str]:
    control_plane = next((n for n in nodes if n.role == "control-plane"), None)
    if control_plane is None:
        return []
    problems = []
    for filename, args in CLUSTER_COMMANDS.items():
        try:
            result = control_plane.exec(*kubectl_argv(*args), check=False)
            (dest / filename).write_text(redact(result.output))
        except Exception as exc:  # noqa: BLE001 - the apiserver may be what failed
            problems.append(f"kubectl {' '.join(args)}: {exc}")
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
        problems += _export_cluster(nodes, dest)
    if problems:
        (dest / "export-errors.txt").write_text("\n".join(problems) + "\n")
        # Expected when a node or the apiserver is what failed; the file says what is missing.
        log.info("log export to %s is incomplete: see export-errors.txt there", dest)
    return dest
