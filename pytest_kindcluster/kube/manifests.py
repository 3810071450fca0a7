"""Manifests given as YAML text, a file, or a directory of files, as ``kubectl apply -f`` takes."""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def manifest_text(manifest: str | os.PathLike[str]) -> str:
    """YAML text as is; a path's file, or a directory's manifests joined as one stream.

    A ``str`` is a path only when it is one line naming an existing file or directory, so YAML
    text can never be mistaken for a path.
    """
    if not isinstance(manifest, str) or ("\n" not in manifest and Path(manifest).exists()):
        path = Path(manifest)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES)
            return "\n---\n".join(p.read_text() for p in files)
        return path.read_text()
    return manifest
