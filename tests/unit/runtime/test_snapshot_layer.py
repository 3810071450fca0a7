"""The layer a snapshot adds on top of a node image: only what the node's /var changed."""

from __future__ import annotations

import io
import tarfile

import pytest

from pytest_kindcluster.errors import EngineError
from pytest_kindcluster.runtime.docker.var_layer import (
    ChunkReader,
    layer_tar,
    open_stream,
    signature,
)


def member(
    name: str, data: bytes = b"", *, mtime: int = 100, kind: bytes = tarfile.REGTYPE
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mtime = mtime
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info, data


def archive(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def read(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        return {
            m.name: (tar.extractfile(m).read() if m.isreg() else b"<dir>")  # type: ignore[union-attr]
            for m in tar
        }


IMAGE_VAR = [
    member("var", kind=tarfile.DIRTYPE),
    member("var/lib/containerd/blob", b"preloaded image"),
    member("var/lib/dpkg/status", b"packages"),
    member("var/log/old.log", b"from the image"),
]


def test_only_new_and_changed_files_go_into_the_layer_and_deletions_are_reported() -> None:
    base = {info.name: signature(info) for info, _ in IMAGE_VAR}
    volume = archive(
        member("var", kind=tarfile.DIRTYPE, mtime=200),  # the directory changed (new entries)
        member("var/lib/containerd/blob", b"preloaded image"),  # as copied: unchanged
        member("var/lib/dpkg/status", b"packages", mtime=300),  # rewritten, same size
        member("var/lib/etcd/member/wal", b"cluster state"),  # new
    )
    out = io.BytesIO()
    gone = layer_tar(io.BytesIO(volume), base, {"/kind/pending": b"172.18.0.2\n"}, out, mtime=400)
    assert read(out.getvalue()) == {
        "var": b"<dir>",
        "var/lib/dpkg/status": b"packages",
        "var/lib/etcd/member/wal": b"cluster state",
        "kind/pending": b"172.18.0.2\n",
    }
    assert gone == ["var/log/old.log"]


def test_an_overlay_whiteout_is_refused_with_its_path() -> None:
    whiteout = member("var/lib/containerd/snapshots/7/fs/etc/gone", kind=tarfile.CHRTYPE)
    out = io.BytesIO()
    with pytest.raises(EngineError, match="snapshots/7/fs/etc/gone is an overlay whiteout"):
        layer_tar(io.BytesIO(archive(whiteout)), {}, {}, out)


def test_a_chunk_iterator_reads_as_a_stream() -> None:
    data = archive(*IMAGE_VAR)
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    assert open_stream(chunks).read() == data
    assert ChunkReader([]).read() == b""


def test_moved_entries_go_outside_var_with_links_in_their_place() -> None:
    snapshots = "var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
    volume = archive(
        member(snapshots, kind=tarfile.DIRTYPE),
        member(f"{snapshots}/7", kind=tarfile.DIRTYPE),
        member(f"{snapshots}/7/fs/bin/tool", b"binary"),
        member("var/lib/containerd/other", b"stays"),
    )
    link = tarfile.TarInfo(f"{snapshots}/7/fs/bin/alias")
    link.type, link.linkname = tarfile.LNKTYPE, f"{snapshots}/7/fs/bin/tool"
    outside = tarfile.TarInfo("var/lib/elsewhere")
    outside.type, outside.linkname = tarfile.LNKTYPE, f"{snapshots}/7/fs/bin/tool"
    data = io.BytesIO(volume[:-1024])  # drop the end-of-archive blocks to append the links
    with tarfile.open(fileobj=data, mode="a") as tar:
        tar.addfile(link)
        tar.addfile(outside)
    out = io.BytesIO()
    moves = {"/" + snapshots: "/kind/containerd-snapshots"}
    layer_tar(io.BytesIO(data.getvalue()), {}, {}, out, moves=moves)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()), mode="r") as tar:
        members = {m.name: m for m in tar}
    assert members[snapshots].isdir()  # the directory itself stays, in the volume
    assert members[f"{snapshots}/7"].issym()
    assert members[f"{snapshots}/7"].linkname == "/kind/containerd-snapshots/7"
    assert members["kind/containerd-snapshots/7"].isdir()
    assert members["kind/containerd-snapshots/7/fs/bin/tool"].size == len(b"binary")
    assert members["kind/containerd-snapshots/7/fs/bin/alias"].linkname == (
        "kind/containerd-snapshots/7/fs/bin/tool"
    )
    assert members["var/lib/elsewhere"].linkname == "kind/containerd-snapshots/7/fs/bin/tool"
    assert "var/lib/containerd/other" in members
    assert not [name for name in members if name.startswith(f"{snapshots}/7/")]
