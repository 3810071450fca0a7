"""The node's root filesystem: a Debian rootfs from debootstrap, then our files and binaries."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_kindcluster.errors import BuildError, CommandFailed
from pytest_kindcluster.nodeimage.build_progress import BuildProgress
from pytest_kindcluster.nodeimage.versions import DEBIAN_SUITE
from pytest_kindcluster.util.hashing import digest

FILES_DIR = Path(__file__).parent / "files"

# kind's node package set (kind: images/base/Dockerfile), less open-iscsi and nfs-common, which only
# matter to users of those storage drivers, plus ipset, which kube-router needs, and
# busybox-static, the shell of the busybox utility image (bookworm's 1.35 build segfaults in
# wget on this kernel; the node's suite is the one source of Debian binaries).
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "containernetworking-plugins",
    "conntrack",
    "iptables",
    "nftables",
    "ipset",
    "iproute2",
    "ethtool",
    "util-linux",
    "mount",
    "kmod",
    "libseccomp2",
    "pigz",
    "fuse-overlayfs",
    "bash",
    "ca-certificates",
    "curl",
    "jq",
    "procps",
    "socat",
    "e2fsprogs",
    "busybox-static",
)

# Where each binary lands in the node, per docs/node-contract.md#kubernetes-binaries-and-units.
NODE_BINARIES: Mapping[str, str] = {
    "containerd": "/usr/local/bin/containerd",
    "ctr": "/usr/local/bin/ctr",
    "containerd-shim-runc-v2": "/usr/local/bin/containerd-shim-runc-v2",
    "crictl": "/usr/local/bin/crictl",
    "runc": "/usr/local/sbin/runc",
    "kubeadm": "/usr/bin/kubeadm",
    "kubelet": "/usr/bin/kubelet",
    "kubectl": "/usr/bin/kubectl",
}


def debian_mirror() -> str:
    """The machine's own Debian mirror, so builds work behind the same network rules as apt."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    return "http://deb.debian.org/debian"


def run(argv: Sequence[str], step: str, **kwargs: object) -> str:
    """Run a host command; failures carry the command and its output."""
    proc = subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stdout + proc.stderr, step=step)
    return str(proc.stdout)


def debootstrap(dest: Path, packages: Sequence[str], cache_dir: Path, mirror: str) -> None:
    """A minbase DEBIAN_SUITE rootfs with ``packages`` in ``dest``; the .debs are cached."""
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed; run: apt-get install -y debootstrap")
    if os.geteuid() != 0:
        raise BuildError("debootstrap needs root (it makes device nodes and chroots)")
    shutil.rmtree(dest, ignore_errors=True)
    debs = cache_dir / "debs" / DEBIAN_SUITE
    debs.mkdir(parents=True, exist_ok=True)
    argv = ["debootstrap", "--variant=minbase", f"--include={','.join(packages)}"]
    argv += [f"--cache-dir={debs}", DEBIAN_SUITE, str(dest), mirror]
    run(argv, step=f"debootstrap {DEBIAN_SUITE}")


def base_rootfs_path(cache_dir: Path) -> Path:
    """Where the rootfs tarball for this suite, mirror and package list is (or will be)."""
    key = digest(DEBIAN_SUITE, debian_mirror(), PACKAGES)
    return cache_dir / "rootfs" / f"debian-{DEBIAN_SUITE}-{key}.tar"


def base_rootfs(cache_dir: Path, progress: BuildProgress) -> Path:
    """A tarball of the debootstrapped Debian rootfs, cached by suite, mirror and packages."""
    mirror = debian_mirror()
    tarball = base_rootfs_path(cache_dir)
    if tarball.exists():
        progress.note(f"debian {DEBIAN_SUITE} rootfs: cached ({tarball.name})")
        return tarball
    with progress.phase(f"debootstrap debian {DEBIAN_SUITE} ({len(PACKAGES)} packages)"):
        work = tarball.parent / f".{tarball.stem}"
        debootstrap(work, PACKAGES, cache_dir, mirror)
        partial = tarball.with_suffix(".partial")
        run(
            ["tar", "--numeric-owner", "-C", str(work), "-cf", str(partial), "."], step="tar rootfs"
        )
        partial.rename(tarball)
        shutil.rmtree(work)
    return tarball


def assemble(
    base: Path,
    dest: Path,
    binaries: Mapping[str, Path],
    kube_version: str,
    manifests: Mapping[str, str],
) -> Path:
    """Unpack the base rootfs into ``dest`` and lay our files, binaries and manifests over it."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    run(["tar", "--numeric-owner", "-C", str(dest), "-xpf", str(base)], step="unpack rootfs")
    run(["cp", "-a", f"{FILES_DIR / 'rootfs'}/.", str(dest)], step="copy node files")
    for name, target in NODE_BINARIES.items():
        _install(binaries[name], dest / target.lstrip("/"))
    kind_dir = dest / "kind"
    (kind_dir / "manifests").mkdir(parents=True, exist_ok=True)
    (kind_dir / "version").write_text(kube_version + "\n")
    for name, text in manifests.items():
        (kind_dir / "manifests" / name).write_text(text)
    run(["bash", str(FILES_DIR / "trim.sh"), str(dest)], step="trim rootfs")
    return dest


def _install(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    target.chmod(0o755)


def shared_library_closure(rootfs: Path, programs: Sequence[str]) -> set[str]:
    """Every shared library the programs load, resolved inside ``rootfs`` with its own ldd."""
    libs: set[str] = set()
    for program in programs:
        out = run(["chroot", str(rootfs), "ldd", program], step=f"ldd {program}")
        for line in out.splitlines():
            parts = line.split()
            # "libx.so.1 => /lib/x/libx.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
            path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
            if path.startswith("/"):
                libs.add(path)
    return libs
