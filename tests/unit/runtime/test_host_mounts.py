"""Optional host paths: bound into nodes only where the engine's host has them."""

from __future__ import annotations

from pathlib import Path

from pytest_kindcluster.runtime.docker.extras import OPTIONAL_HOST_PATHS, host_mounts


def test_a_host_without_lib_modules_gets_no_bind(tmp_path: Path) -> None:
    # A fresh host whose kernel has no loadable modules: the Engine API would refuse the bind.
    assert host_mounts(tmp_path) == []


def test_an_existing_lib_modules_is_bound_read_only(tmp_path: Path) -> None:
    (tmp_path / "lib" / "modules").mkdir(parents=True)
    mounts = host_mounts(tmp_path)
    assert [(m["Source"], m["Target"], m["ReadOnly"], m["Type"]) for m in mounts] == [
        ("/lib/modules", "/lib/modules", True, "bind")
    ]


def test_a_file_named_like_the_path_is_not_bound(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "modules").write_text("not a directory")
    assert host_mounts(tmp_path) == []


def test_a_remote_engine_gets_no_optional_bind() -> None:
    assert "/lib/modules" in OPTIONAL_HOST_PATHS
    assert host_mounts(None) == []
