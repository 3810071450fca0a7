"""The layer a snapshot adds to a node: what its ``/var`` volume changed, as a tar stream.

Pure archive work, no engine: :func:`layer_tar` reads the volume's archive (from the engine's
archive API) and writes the members the new image layer needs. Only files that differ from the
node image's own ``/var`` go in: about 600 MB of preloaded images are already in the image below.

Limits: the archive API keeps only ``security.capability`` among extended attributes, so an
overlay "opaque directory" mark of a containerd snapshot would be lost, and a whiteout cannot be
stored in an image layer at all (refused). The preloaded images of this project's node image have
neither; the clone's pods run from the snapshots as they were unpacked at capture.
"""

from __future__ import annotations

import io
import tarfile
import time
from collections.abc import Iterable, Mapping
from typing import IO, Any

from pytest_kindcluster.errors import EngineError
from pytest_kindcluster.runtime.docker.streams import CHUNK

# What decides that a file of the volume is the same as the image's: tar's own metadata. A copy
# into a new volume keeps sizes, modes, owners and modification times (Docker copies with
# containerd's continuity fs.CopyDir), so an unchanged file matches on all of them.
Signature = tuple[bytes, int, int, int, int, int, str]
VAR = "var"


def signature(member: tarfile.TarInfo) -> Signature:
    """The metadata two identical files share."""
    return (
        member.type,
        member.size,
        int(member.mtime),
        member.mode,
        member.uid,
        member.gid,
        member.linkname,
    )


class ChunkReader(io.RawIOBase):
    """A readable file over the engine's chunk iterator, for tarfile's streaming mode."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def open_stream(chunks: Iterable[bytes]) -> IO[bytes]:
    """A buffered binary stream over chunks (tarfile reads it in small pieces)."""
    return io.BufferedReader(ChunkReader(chunks), CHUNK)


class Mover:
    """Renames archive members from one directory's entries to another directory, leaving a
    symbolic link where each entry was (``moves``: directory -> new parent, absolute paths)."""

    def __init__(self, moves: Mapping[str, str]) -> None:
        self.moves = {old.strip("/") + "/": new.strip("/") for old, new in moves.items()}

    def target(self, name: str) -> str | None:
        """Where ``name`` goes, or None when it stays."""
        for old, new in self.moves.items():
            if name.startswith(old) and name != old:
                return new + "/" + name.removeprefix(old)
        return None

    def members(self, member: tarfile.TarInfo) -> list[tarfile.TarInfo]:
        """The member at its new place, preceded (for an entry of a moved directory) by the
        link that replaces it; hard links follow their target."""
        target = self.target(member.name)
        link_target = self.target(member.linkname) if member.islnk() else None
        if target is None:
            return [member.replace(linkname=link_target, deep=False) if link_target else member]
        moved = member.replace(name=target, deep=False)
        if link_target:
            moved.linkname = link_target
        if "/" in member.name.removeprefix(self._parent(member.name)):
            return [moved]  # deeper down: only renamed
        link = tarfile.TarInfo(member.name)
        link.type = tarfile.SYMTYPE
        link.linkname = "/" + target
        link.mtime = member.mtime
        return [moved, link]

    def _parent(self, name: str) -> str:
        return next(old for old in self.moves if name.startswith(old))


def layer_tar(
    source: IO[bytes],
    base: Mapping[str, Signature],
    extra_files: Mapping[str, bytes],
    out: IO[bytes],
    *,
    moves: Mapping[str, str] | None = None,
    mtime: float | None = None,
) -> list[str]:
    """Write to ``out`` the members of ``source`` that ``base`` lacks or holds differently, then
    ``extra_files``; return the paths of ``base`` that ``source`` no longer has (deleted files).

    The entries of each directory in ``moves`` go to another directory (outside ``/var``, so a
    new volume does not get a copy) and are replaced by symbolic links.
    """
    seen: set[str] = set()
    mover = Mover(moves or {})
    with (
        tarfile.open(fileobj=source, mode="r|") as src,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in src:
            seen.add(member.name)
            if member.ischr() and member.devmajor == member.devminor == 0:
                # An overlay whiteout (a layer of a preloaded image deletes a file): an image
                # layer cannot carry one, Docker's own overlay would take it as its whiteout.
                raise EngineError(
                    "capture /var",
                    f"{member.name} is an overlay whiteout, which a snapshot image cannot hold",
                )
            moved = mover.members(member)
            if moved[0] is member and base.get(member.name) == signature(member):
                continue
            data = src.extractfile(member) if member.isreg() else None
            for entry in moved:
                dst.addfile(entry, data if entry.isreg() else None)
        for path, content in sorted(extra_files.items()):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(content)
            info.mode = 0o644
            info.mtime = int(mtime if mtime is not None else time.time())
            dst.addfile(info, io.BytesIO(content))
    return sorted(name for name in base if name not in seen)
