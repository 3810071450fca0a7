"""The one input that is neither a Go module nor a Debian package: our pause binary."""

from __future__ import annotations

import shutil
from pathlib import Path

from pytest_kindcluster.errors import BuildError
from pytest_kindcluster.nodeimage.rootfs import run
from pytest_kindcluster.util.hashing import digest

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
