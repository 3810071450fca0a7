"""Removing a node whose cgroups a runc inside froze: thaw, then remove, again if need be.

The host's cgroup file system is a directory tree under tmp_path; the engine is a stand-in that
refuses to remove a node while any of its freezers is FROZEN, as Docker does ("did not receive
an exit event"). tests/integration/test_interrupts.py does it with a real node and cgroup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker.errors
import pytest

from pytest_kindcluster.errors import EngineError
from pytest_kindcluster.runtime.docker import removal

ID = "d84d0aa610b858ddf6b3d31467e4932f"


def freezer(host: Path, *parts: str, state: str = "THAWED") -> Path:
    directory = host.joinpath("sys/fs/cgroup/freezer", *parts)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "freezer.state").write_text(state + "\n")
    return directory / "freezer.state"


class Engine:
    """``client.api`` of the Docker SDK, as far as removal uses it."""

    def __init__(self, host: Path, attrs: dict[str, Any]) -> None:
        self.api = self
        self.host = host
        self.attrs = attrs
        self.removed: list[str] = []
        self.refusals = 0

    def inspect_container(self, name: str) -> dict[str, Any]:
        return self.attrs

    def remove_container(self, name: str, *, v: bool, force: bool) -> None:
        frozen = [p for p in self.host.rglob("freezer.state") if p.read_text().strip() == "FROZEN"]
        if frozen:
            self.refusals += 1
            raise docker.errors.APIError(
                "could not kill: tried to kill container, but did not receive an exit event"
            )
        self.removed.append(name)


def attrs(pid: int = 0, parent: str = "") -> dict[str, Any]:
    return {"Id": ID, "State": {"Pid": pid}, "HostConfig": {"CgroupParent": parent}}


def test_a_frozen_child_cgroup_is_thawed_parents_first_and_the_node_removed(
    tmp_path: Path,
) -> None:
    top = freezer(tmp_path, "docker", ID)
    pod = freezer(tmp_path, "docker", ID, "kubepods", "pod1", state="FROZEN")
    ctr = freezer(tmp_path, "docker", ID, "kubepods", "pod1", "ctr", state="FREEZING")
    engine = Engine(tmp_path, attrs())
    removal.remove_node(engine, "n1", tmp_path)  # type: ignore[arg-type]
    assert engine.removed == ["n1"]
    assert engine.refusals == 0  # thawed before the first try
    assert [p.read_text() for p in (top, pod, ctr)] == ["THAWED\n", "THAWED", "THAWED"]


def test_the_cgroup_is_found_from_the_init_process_too(tmp_path: Path) -> None:
    state = freezer(tmp_path, "custom", "parent", ID, state="FROZEN")
    proc = tmp_path / "proc" / "4242"
    proc.mkdir(parents=True)
    (proc / "cgroup").write_text(f"6:freezer:/custom/parent/{ID}\n5:devices:/x\n")
    engine = Engine(tmp_path, attrs(pid=4242))
    assert removal.freezer_dirs(tmp_path, engine.attrs) == [state.parent]
    assert removal.thaw_node(engine, "n1", tmp_path) == [state]  # type: ignore[arg-type]


def test_the_systemd_driver_layout_is_found(tmp_path: Path) -> None:
    state = freezer(tmp_path, "system.slice", f"docker-{ID}.scope", state="FROZEN")
    assert removal.freezer_dirs(tmp_path, attrs()) == [state.parent]


def test_a_cgroup_frozen_again_between_tries_is_thawed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = freezer(tmp_path, "docker", ID, "kubepods", state="FROZEN")
    engine = Engine(tmp_path, attrs())
    thaw = removal.thaw_node
    calls: list[int] = []

    def thaw_then_refreeze(*args: Any) -> list[Path]:
        thawed = thaw(*args)
        calls.append(len(thawed))
        if len(calls) == 1:
            state.write_text("FROZEN")  # a runc inside froze it again before the kill
        return thawed

    monkeypatch.setattr(removal, "thaw_node", thaw_then_refreeze)
    removal.remove_node(engine, "n1", tmp_path)  # type: ignore[arg-type]
    assert engine.refusals == 1
    assert engine.removed == ["n1"]
    assert calls == [1, 1]


def test_without_the_hosts_cgroups_the_error_says_how_to_thaw(tmp_path: Path) -> None:
    freezer(tmp_path, "docker", ID, "kubepods", state="FROZEN")
    engine = Engine(tmp_path, attrs())
    with pytest.raises(EngineError, match="did not receive an exit event") as info:
        removal.remove_node(engine, "n1", None)  # type: ignore[arg-type]  # a remote engine
    assert engine.refusals == removal.ATTEMPTS
    assert any("echo THAWED into each freezer.state" in n for n in info.value.__notes__)
