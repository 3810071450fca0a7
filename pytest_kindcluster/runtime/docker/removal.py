"""Removing node containers, including nodes whose cgroups a runc inside left frozen.

cgroup v1's freezer stops every task of a frozen cgroup, and a frozen task does not even die of
SIGKILL until it is thawed. runc freezes a container's cgroup while it updates it (the kubelet
has it do so often while a node comes up); when the node is killed at that moment (Ctrl-C during
``kubeadm init``), the runc that would thaw it dies with the node, the cgroup stays FROZEN, and
``docker rm -f`` fails after about ten seconds with "could not kill: tried to kill container,
but did not receive an exit event", again and again.

``docker unpause`` does not help: it applies only to a container Docker itself paused, and
thaws only the node's own cgroup; in v1 a child cgroup frozen by itself (its
``freezer.self_freezing``) stays frozen when its parent thaws. Writing ``THAWED`` to every
``freezer.state`` under the node's cgroup does, after which the engine's kill works. cgroup v2's
freezer lets fatal signals through, so only v1 hosts need this; it works where the engine's
``/sys`` is this process's (a local engine, seen through ``host_root``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import docker
import docker.errors

from pytest_kindcluster.errors import EngineError
from pytest_kindcluster.runtime.docker.errors import engine_errors

log = logging.getLogger(__name__)

FREEZER = Path("sys/fs/cgroup/freezer")
# Tries of `docker rm -f`, with a thaw before each: a runc still running inside may freeze a
# cgroup again between a thaw and the kill.
ATTEMPTS = 3


def remove_node(client: docker.DockerClient, name: str, host_root: Path | None) -> None:
    """``docker rm -f -v``, thawing the node's frozen cgroups first and between attempts."""
    failure: EngineError | None = None
    for _ in range(ATTEMPTS):
        thaw_node(client, name, host_root)
        try:
            with engine_errors(f"remove node {name!r}"), suppress(docker.errors.NotFound):
                client.api.remove_container(name, v=True, force=True)
        except EngineError as exc:
            failure = exc
            log.warning("removing node %s failed (%s); thawing and trying again", name, exc)
            continue
        return
    assert failure is not None  # the loop only ends here after a failure
    if host_root is None:
        failure.add_note(
            f"if {name}'s cgroups are frozen (cgroup v1), thaw them on the engine's host: "
            f"echo THAWED into each freezer.state under /sys/fs/cgroup/freezer/docker/<id of "
            f"{name}>, then `docker rm -f -v {name}`"
        )
    raise failure


def thaw_node(client: docker.DockerClient, name: str, host_root: Path | None) -> list[Path]:
    """Thaw every frozen cgroup v1 freezer under the node; returns the ones it thawed.

    Best effort: a node that is gone, an engine that does not share our ``/sys``, or a v2 host
    have nothing to thaw here.
    """
    if host_root is None or not (host_root / FREEZER).is_dir():
        return []
    try:
        attrs = client.api.inspect_container(name)
    except docker.errors.DockerException:
        return []
    thawed: list[Path] = []
    for top in freezer_dirs(host_root, attrs):
        thawed += thaw_tree(top)
    if thawed:
        log.warning("thawed %d frozen cgroup(s) of node %s", len(thawed), name)
    return thawed


def freezer_dirs(host_root: Path, attrs: Mapping[str, Any]) -> list[Path]:
    """Where the node's freezer cgroup is: as its init process sees it, else where Docker puts it.

    cgroupfs driver: ``<parent or docker>/<id>``; systemd driver: ``<parent or
    system.slice>/docker-<id>.scope``.
    """
    root = host_root / FREEZER
    container_id = str(attrs.get("Id", ""))
    parent = str((attrs.get("HostConfig") or {}).get("CgroupParent") or "").strip("/")
    candidates = [
        root / (parent or "docker") / container_id,
        root / (parent or "system.slice") / f"docker-{container_id}.scope",
    ]
    pid = int((attrs.get("State") or {}).get("Pid") or 0)
    if pid:
        with suppress(OSError):
            for line in (host_root / f"proc/{pid}/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                if "freezer" in controllers.split(","):
                    candidates.insert(0, root / path.strip("/"))
    found: list[Path] = []
    for candidate in candidates:
        if container_id and candidate.is_dir() and candidate not in found:
            found.append(candidate)
    return found


def thaw_tree(top: Path) -> list[Path]:
    """Write THAWED to each frozen ``freezer.state`` under ``top``, parents before children."""
    thawed: list[Path] = []
    for directory, _, _ in os.walk(top):  # top-down: a child cannot thaw under a frozen parent
        state = Path(directory) / "freezer.state"
        with suppress(OSError):  # the cgroup may vanish as its last task dies
            if state.read_text().strip() != "THAWED":
                state.write_text("THAWED")
                thawed.append(state)
    return thawed
