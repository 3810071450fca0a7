"""Where expensive build outputs are kept, keyed by their inputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pytest_kindcluster.util.cache import default_cache_dir

__all__ = ["default_cache_dir", "hash_file", "hash_tree"]


def hash_tree(root: Path) -> str:
    """Hash the names, modes and contents of every file below ``root``."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        h.update(rel.encode())
        if path.is_symlink():
            h.update(b"->" + str(path.readlink()).encode())
        else:
            h.update(oct(path.stat().st_mode & 0o777).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def hash_file(path: Path) -> str:
    """sha256 of one file's contents."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
