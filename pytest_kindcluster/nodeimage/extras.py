"""Small inputs that are not Go modules: our pause binary and Debian's static busybox."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from pytest_kindcluster.errors import BuildError
from pytest_kindcluster.nodeimage.cache import digest
from pytest_kindcluster.nodeimage.rootfs import run

PAUSE_SOURCE = Path(__file__).parent / "pause" / "pause.c"


def pause_binary(cache_dir: Path) -> Path:
    """Compile pause.c statically; cached by the source and the compiler's version."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise BuildError(
            "a C compiler (cc) is needed to build the pause binary; "
            "apt-get install -y gcc libc6-dev, or put `pause` in --bin-dir"
        )
    version = run([cc, "--version"], step="cc --version").splitlines()[0]
    out = cache_dir / "pause" / digest(PAUSE_SOURCE.read_text(), version) / "pause"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        run([cc, "-static", "-Os", "-s", "-o", str(tmp), str(PAUSE_SOURCE)], step="cc pause.c")
        tmp.rename(out)
    return out


def busybox_binary(cache_dir: Path) -> Path:
    """Debian's busybox-static, downloaded as a package and unpacked (not installed)."""
    out = cache_dir / "busybox" / "busybox"
    if out.exists():
        return out
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise BuildError(
            "busybox comes from Debian's busybox-static package, which needs "
            "apt-get and dpkg-deb; or put a static `busybox` in --bin-dir"
        )
    with tempfile.TemporaryDirectory() as tmp:
        run(["apt-get", "download", "busybox-static"], step="apt-get download busybox-static",
            cwd=tmp)  # fmt: skip
        deb = next(Path(tmp).glob("busybox-static_*.deb"))
        run(["dpkg-deb", "-x", str(deb), f"{tmp}/x"], step="dpkg-deb -x busybox-static")
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f"{tmp}/x/bin/busybox", out)
    out.chmod(0o755)
    return out
