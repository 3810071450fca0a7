"""Build the HA load-balancer image from Debian's haproxy, without any registry.

A minbase Debian rootfs with haproxy and busybox-static is debootstrapped once (its .debs share
the node rootfs's cache). The image is only what haproxy needs: the binary and its shared-library
closure, a static busybox (so the plugin can write the config and signal a reload through
``exec``), and the default configuration. It is written as a docker-archive and loaded into the
host engine, keyed by its inputs so an up-to-date image is never rebuilt.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pytest_kindcluster.contract import HAPROXY_SERIES, LOADBALANCER_IMAGE
from pytest_kindcluster.errors import BuildError
from pytest_kindcluster.nodeimage.archive import Image, Layer, write_archive
from pytest_kindcluster.nodeimage.build_progress import BuildProgress
from pytest_kindcluster.nodeimage.components import busybox_layer
from pytest_kindcluster.nodeimage.rootfs import (
    debian_mirror,
    debootstrap,
    run,
    shared_library_closure,
)
from pytest_kindcluster.nodeimage.versions import DEBIAN_SUITE
from pytest_kindcluster.provision.loadbalancer import (
    CONFIG_PATH,
    ENTRYPOINT,
    HAPROXY_VERSION_LABEL,
    render_config,
)
from pytest_kindcluster.runtime.docker.images import ImageStore
from pytest_kindcluster.util.hashing import digest

KEY_LABEL = "io.pytest-kindcluster.build-key"
PACKAGES = ("haproxy", "busybox-static")
# Bump when the image's layout changes in a way the inputs do not show.
REVISION = 1
HAPROXY = "/usr/sbin/haproxy"
_VERSION = re.compile(r"HAProxy version (\S+)")


@dataclass
class _LabelledImage(Image):
    """An archive image that also carries labels and a stop signal in its config."""

    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = "SIGTERM"

    def config(self) -> bytes:
        body = json.loads(super().config())
        body["config"]["Labels"] = dict(self.labels)
        body["config"]["StopSignal"] = self.stop_signal
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def build_key() -> str:
    """What the image depends on: suite, mirror, packages, layout and default config."""
    return digest(
        REVISION, DEBIAN_SUITE, debian_mirror(), PACKAGES, list(ENTRYPOINT), render_config([])
    )


def haproxy_rootfs_path(cache_dir: Path) -> Path:
    """Where the haproxy rootfs for this suite, mirror and package list is (or will be)."""
    key = digest(DEBIAN_SUITE, debian_mirror(), PACKAGES)
    return cache_dir / "rootfs" / f"debian-{DEBIAN_SUITE}-haproxy-{key}"


def haproxy_rootfs(cache_dir: Path, progress: BuildProgress) -> Path:
    """A minbase rootfs with haproxy, debootstrapped once and kept (its .debs are shared)."""
    rootfs = haproxy_rootfs_path(cache_dir)
    if rootfs.is_dir():
        progress.note(f"haproxy rootfs: cached ({rootfs.name})")
        return rootfs
    partial = rootfs.with_name(rootfs.name + ".partial")
    with progress.phase(f"debootstrap debian {DEBIAN_SUITE} with haproxy"):
        debootstrap(partial, PACKAGES, cache_dir, debian_mirror())
    partial.rename(rootfs)
    return rootfs


def haproxy_version(rootfs: Path) -> str:
    """The packaged haproxy's version; it must be of the series the image tag names."""
    out = run(["chroot", str(rootfs), HAPROXY, "-v"], step="haproxy -v")
    match = _VERSION.search(out)
    if not match:
        raise BuildError(f"cannot read haproxy's version from: {out!r}")
    version = match[1]
    if not version.startswith(HAPROXY_SERIES + "."):
        raise BuildError(
            f"Debian {DEBIAN_SUITE} ships haproxy {version}, but the image is tagged for the "
            f"{HAPROXY_SERIES} series; update HAPROXY_SERIES in pytest_kindcluster/contract.py"
        )
    return version


def haproxy_layer(rootfs: Path, config: Path) -> Layer:
    """haproxy with its libraries, the default config, and the files libc looks for."""
    layer = Layer()
    root = rootfs.resolve()
    for path in sorted({HAPROXY} | shared_library_closure(rootfs, [HAPROXY])):
        source = rootfs / path.lstrip("/")
        real = source.resolve()
        if not real.is_relative_to(root):
            raise BuildError(f"{path} in the haproxy rootfs resolves outside it: {real}")
        # ldd names libraries through merged-/usr links (/lib -> usr/lib); a layer must put
        # the file under the real directory, or the link and the directory collide on load.
        directory = source.parent.resolve().relative_to(root)
        layer.add_file(f"/{directory.as_posix()}/{source.name}".replace("//", "/"), real)
    layer.add_file(CONFIG_PATH, config)
    for name in ("passwd", "group", "nsswitch.conf"):
        layer.add_file(f"/etc/{name}", rootfs / "etc" / name)
    for link, target in (("/lib", "usr/lib"), ("/lib64", "usr/lib64"), ("/sbin", "usr/sbin")):
        layer.add_symlink(link, target)
    layer.dirs.update({"/tmp", "/run", "/var/lib/haproxy"})
    return layer


def loadbalancer_image(rootfs: Path, work: Path, key: str) -> tuple[_LabelledImage, str]:
    """The image (not yet written) and the haproxy version inside it."""
    version = haproxy_version(rootfs)
    config = work / "haproxy.cfg"
    config.write_text(render_config([]))
    image = _LabelledImage(
        tags=[LOADBALANCER_IMAGE],
        layers=[busybox_layer(rootfs / "usr/bin/busybox"), haproxy_layer(rootfs, config)],
        entrypoint=list(ENTRYPOINT),
        labels={KEY_LABEL: key, HAPROXY_VERSION_LABEL: version},
        # haproxy's master stops its workers gracefully on SIGUSR1 and at once on SIGTERM;
        # a test cluster's teardown wants the latter.
        stop_signal="SIGTERM",
    )
    return image, version


def build_loadbalancer(cache_dir: Path, progress: BuildProgress, *, force: bool = False) -> str:
    """Build (or reuse) :data:`LOADBALANCER_IMAGE` in the host engine; return its reference."""
    store = ImageStore()
    key = build_key()
    labels = store.labels(LOADBALANCER_IMAGE)
    if not force and labels and labels.get(KEY_LABEL) == key:
        progress.note(f"{LOADBALANCER_IMAGE} is up to date (build key {key})")
        return LOADBALANCER_IMAGE
    progress.expect(1 if haproxy_rootfs_path(cache_dir).is_dir() else 2)
    rootfs = haproxy_rootfs(cache_dir, progress)
    work_root = cache_dir / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(dir=work_root) as tmp,
        progress.phase(f"write and load {LOADBALANCER_IMAGE}"),
    ):
        work = Path(tmp)
        image, version = loadbalancer_image(rootfs, work, key)
        write_archive([image], work / "haproxy.tar")
        store.load(work / "haproxy.tar")
        progress.note(f"haproxy {version} from Debian {DEBIAN_SUITE}")
    return LOADBALANCER_IMAGE
