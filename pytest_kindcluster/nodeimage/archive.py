"""Write container images as a docker-archive tarball, without a registry or a daemon.

Layers are written deterministically (sorted, mtime 0, root-owned), so the same files always give
the same layer digest and images that share a layer store it once in containerd.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Layer:
    """Files of one layer: image path -> host file, plus symlinks and empty directories."""

    files: dict[str, Path] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    _blob: bytes | None = field(default=None, repr=False)

    def add_file(self, image_path: str, source: Path) -> Layer:
        self.files[image_path] = source
        self._blob = None
        return self

    def add_symlink(self, image_path: str, target: str) -> Layer:
        self.symlinks[image_path] = target
        self._blob = None
        return self

    def blob(self) -> bytes:
        """The uncompressed layer tar, built once."""
        if self._blob is None:
            self._blob = _render_layer(self)
        return self._blob

    def diff_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.blob()).hexdigest()


@dataclass
class Image:
    """An image to write: its tags, layers (bottom first) and process settings."""

    tags: list[str]
    layers: list[Layer]
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = field(default_factory=lambda: {"PATH": DEFAULT_PATH})
    workdir: str = "/"

    def config(self) -> bytes:
        body = {
            "architecture": "amd64",
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {
                "Env": [f"{k}={v}" for k, v in self.env.items()],
                "Entrypoint": self.entrypoint,
                "Cmd": self.cmd,
                "WorkingDir": self.workdir,
            },
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id() for layer in self.layers]},
            "history": [{"created_by": "pytest-kindcluster node-image build"} for _ in self.layers],
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _parents(path: str) -> list[str]:
    parts = PurePosixPath(path).parts[1:-1]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def _render_layer(layer: Layer) -> bytes:
    entries: dict[str, tuple[str, Path | str | None]] = {}
    for path in layer.dirs:
        entries[path] = ("dir", None)
    for path, source in layer.files.items():
        entries[path] = ("file", source)
    for path, target in layer.symlinks.items():
        entries[path] = ("link", target)
    for path in list(entries):
        for parent in _parents(path):
            entries.setdefault(parent, ("dir", None))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            kind, value = entries[path]
            info = tarfile.TarInfo(path.lstrip("/"))
            info.mtime = 0
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "link":
                info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, str(value)
                tar.addfile(info)
            else:
                assert isinstance(value, Path)
                data = value.read_bytes()
                info.size = len(data)
                info.mode = value.stat().st_mode & 0o7777
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_archive(images: list[Image], dest: Path) -> Path:
    """Write every image into one docker-archive tar (what `docker save` and `ctr import` read)."""
    manifest = []
    written: set[str] = set()
    with tarfile.open(dest, mode="w") as tar:

        def put(name: str, data: bytes) -> None:
            if name in written:
                return
            written.add(name)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))

        for image in images:
            layer_names = []
            for layer in image.layers:
                name = f"{layer.diff_id().removeprefix('sha256:')}/layer.tar"
                put(name, layer.blob())
                layer_names.append(name)
            config = image.config()
            config_name = hashlib.sha256(config).hexdigest() + ".json"
            put(config_name, config)
            manifest.append({"Config": config_name, "RepoTags": image.tags, "Layers": layer_names})
        put("manifest.json", json.dumps(manifest, indent=1).encode())
    return dest
