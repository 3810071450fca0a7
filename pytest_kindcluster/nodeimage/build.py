"""Build a kind-compatible node image offline: compile or collect binaries, then assemble.

Phases: binaries (compiled from Go modules, or taken from ``--bin-dir``), the Debian rootfs,
component images, then a build container in which containerd preloads those images, committed
as the node image. The result is reused when an image with the same tag carries the same key.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from pytest_kindcluster.errors import BuildError, CommandFailed
from pytest_kindcluster.nodeimage import versions
from pytest_kindcluster.nodeimage.archive import write_archive
from pytest_kindcluster.nodeimage.build_progress import BuildProgress
from pytest_kindcluster.nodeimage.cache import hash_file, hash_tree
from pytest_kindcluster.nodeimage.components import (
    binary_version,
    component_images,
    kubeadm_images,
)
from pytest_kindcluster.nodeimage.extras import pause_binary
from pytest_kindcluster.nodeimage.gobuild import build_component, go_version, is_cached
from pytest_kindcluster.nodeimage.rootfs import (
    FILES_DIR,
    assemble,
    base_rootfs,
    base_rootfs_path,
    run,
)
from pytest_kindcluster.runtime.docker.images import BuildContainer, ImageStore
from pytest_kindcluster.util.hashing import digest

KEY_LABEL = "io.pytest-kindcluster.build-key"
VERSION_LABEL = "io.pytest-kindcluster.kubernetes-version"
# Bump when the assembly itself changes in a way the inputs do not show.
BUILDER_REVISION = 1
NODE_CHANGES = (
    'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]',
    "ENV container=docker",
    "STOPSIGNAL SIGRTMIN+3",
)


@dataclass(frozen=True)
class BuildOptions:
    tag: str = DEFAULT_NODE_IMAGE
    bin_dir: Path | None = None
    cache_dir: Path = Path()
    force: bool = False


def collect_bin_dir(bin_dir: Path) -> dict[str, Path]:
    """The user's binaries, by name; every missing one is named in a single error."""
    if not bin_dir.is_dir():
        raise BuildError(f"--bin-dir {bin_dir} is not a directory")
    found = {name: bin_dir / name for name in versions.REQUIRED_BINARIES}
    missing = [name for name, path in found.items() if not path.is_file()]
    if missing:
        raise BuildError(
            f"--bin-dir {bin_dir} lacks {len(missing)} required binaries: {', '.join(missing)} "
            f"(needed: {', '.join(versions.REQUIRED_BINARIES)})"
        )
    return found


# assemble, component images, import, preload+commit, load busybox
ASSEMBLY_PHASES = 5


def assembly_phases(cache_dir: Path) -> int:
    return ASSEMBLY_PHASES + (0 if base_rootfs_path(cache_dir).exists() else 1)


def compile_binaries(cache_dir: Path, progress: BuildProgress) -> dict[str, Path]:
    toolchain = go_version()
    progress.note(f"toolchain: {toolchain}")
    pending = [c for c in versions.COMPONENTS if not is_cached(c, cache_dir, toolchain)]
    if pending:
        # New binaries mean a new image, so the assembly phases are known to follow.
        progress.expect(len(pending) + assembly_phases(cache_dir))
    binaries: dict[str, Path] = {}
    for component in versions.COMPONENTS:
        out = build_component(component, cache_dir, progress, toolchain)
        binaries.update({name: out / name for name in component.packages.values()})
    return binaries


def build_key(binaries: Mapping[str, Path], kube_version: str, rootfs: Path) -> str:
    return digest(
        BUILDER_REVISION,
        kube_version,
        rootfs.name,
        {name: hash_file(path) for name, path in sorted(binaries.items())},
        hash_tree(FILES_DIR),
    )


def build(options: BuildOptions, progress: BuildProgress) -> str:
    """Build (or reuse) the node image and return its reference."""
    store = ImageStore()
    cache = options.cache_dir
    if options.bin_dir is not None:
        binaries = collect_bin_dir(options.bin_dir)
        progress.note(f"using binaries from {options.bin_dir}")
    else:
        binaries = compile_binaries(cache, progress)
    extra = options.bin_dir
    binaries["pause"] = (
        extra / "pause" if extra and (extra / "pause").is_file() else pause_binary(cache)
    )
    kube_version = binary_version(binaries["kubelet"])
    names = kubeadm_images(binaries["kubeadm"], kube_version)
    key = build_key(binaries, kube_version, base_rootfs_path(cache))
    labels = store.labels(options.tag)
    if not options.force and labels and labels.get(KEY_LABEL) == key:
        progress.note(f"{options.tag} is up to date (build key {key})")
        return options.tag

    if progress.total == 0:
        progress.expect(assembly_phases(cache))
    replaced = store.image_id(options.tag)
    base = base_rootfs(cache, progress)
    work_root = cache / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_root) as tmp:
        work = Path(tmp)
        with progress.phase("assemble node rootfs"):
            rootfs = assemble(base, work / "rootfs", binaries, kube_version, _manifests())
        with progress.phase("write component images"):
            # Debian's static busybox from the node's own suite, unless the user brought one.
            busybox = extra / "busybox" if extra and (extra / "busybox").is_file() else None
            busybox = busybox or rootfs / "usr/bin/busybox"
            images, box = component_images(binaries, names, rootfs, busybox)
            write_archive(images, work / "images.tar")
            write_archive([box], work / "busybox.tar")
            for image in images:
                progress.note(", ".join(image.tags))
        base_ref = f"pytest-kindcluster/node-build:{key}"
        with progress.phase("import rootfs into docker"):
            run(
                ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(work / "rootfs.tar"), "."],
                step="tar node rootfs",
            )
            shutil.rmtree(rootfs)
            store.import_rootfs(work / "rootfs.tar", base_ref)
        try:
            with (
                progress.phase("preload images into containerd and commit"),
                store.build_container(base_ref, {str(work): "/kind-build"}) as box_ctr,
            ):
                _preload(box_ctr, [t for image in images for t in image.tags])
                changes = [
                    *NODE_CHANGES,
                    f"LABEL {KEY_LABEL}={key}",
                    f"LABEL {VERSION_LABEL}={kube_version}",
                ]
                box_ctr.commit(options.tag, changes)
        finally:
            store.remove(base_ref)
        with progress.phase("load busybox utility image into docker"):
            progress.note(", ".join(sorted(set(store.load(work / "busybox.tar")))))
    if replaced and store.image_id(options.tag) != replaced and store.remove_replaced(replaced):
        progress.note(f"removed the image this build replaced ({replaced[:19]})")
    return options.tag


def _manifests() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((FILES_DIR / "manifests").glob("*.yaml"))}


def _preload(container: BuildContainer, refs: list[str]) -> None:
    container.exec(["mkdir", "-p", "/run/containerd"])
    container.exec(["containerd", "--log-level", "warn"], detach=True)
    for attempt in Retrying(
        stop=stop_after_delay(30),
        wait=wait_fixed(0.3),
        reraise=True,
        retry=retry_if_exception_type(CommandFailed),
    ):
        with attempt:
            container.exec(["ctr", "version"], step="wait for containerd")
    container.exec(
        [
            "ctr",
            "--namespace=k8s.io",
            "images",
            "import",
            "--no-unpack",
            "--digests",
            "/kind-build/images.tar",
        ],
        step="ctr images import",
    )
    listed = container.exec(["ctr", "--namespace=k8s.io", "images", "ls", "-q"]).split()
    missing = [ref for ref in refs if _normalise(ref) not in listed]
    if missing:
        raise BuildError(f"containerd did not list the imported images {missing}; it has {listed}")
    # Stop containerd cleanly so its metadata database is consistent in the committed layer.
    container.exec(["pkill", "-TERM", "-x", "containerd"])
    for attempt in Retrying(
        stop=stop_after_delay(20),
        wait=wait_fixed(0.3),
        reraise=True,
        retry=retry_if_exception_type(BuildError),
    ):
        with attempt:
            if container.exec(["sh", "-c", "pgrep -x containerd || true"]).strip():
                raise BuildError("containerd did not exit within 20s of SIGTERM")


def _normalise(ref: str) -> str:
    """``busybox:1.36`` -> ``docker.io/library/busybox:1.36``, as containerd names it."""
    name = ref
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return name
