"""Where the package keeps what is expensive to make and safe to reuse."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pytest-kindcluster``, else ``~/.cache/pytest-kindcluster``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-kindcluster"
