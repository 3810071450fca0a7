"""Compile the upstream Go components from their wrapper modules, with a cache keyed by inputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pytest_kindcluster.errors import BuildError, CommandFailed
from pytest_kindcluster.nodeimage.build_progress import BuildProgress
from pytest_kindcluster.nodeimage.versions import GoComponent
from pytest_kindcluster.util.hashing import digest

GOMOD_DIR = Path(__file__).parent / "gomod"
COMPLETE = ".complete"


def go_version() -> str:
    """The toolchain's version line; part of every cache key."""
    go = shutil.which("go")
    if go is None:
        raise BuildError(
            "the Go toolchain (`go`) is not on PATH; install Go >= 1.26 to compile the "
            "components, or assemble from existing binaries with --bin-dir DIR"
        )
    proc = subprocess.run([go, "version"], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def component_key(component: GoComponent, toolchain: str) -> str:
    """Inputs that decide the binaries: pins, the wrapper module's files, flags and toolchain."""
    module_dir = GOMOD_DIR / component.module
    files = {name: (module_dir / name).read_text() for name in ("go.mod", "go.sum", "tools.go")}
    return digest(component, files, toolchain)


def output_dir(component: GoComponent, cache_dir: Path, toolchain: str) -> Path:
    """Where the component's binaries are cached for these inputs."""
    key = component_key(component, toolchain)
    return cache_dir / "go" / f"{component.module}-{component.version}-{key}"


def is_cached(component: GoComponent, cache_dir: Path, toolchain: str) -> bool:
    return (output_dir(component, cache_dir, toolchain) / COMPLETE).exists()


def build_component(
    component: GoComponent, cache_dir: Path, progress: BuildProgress, toolchain: str
) -> Path:
    """Return a directory holding the component's binaries, compiling them if not cached."""
    out = output_dir(component, cache_dir, toolchain)
    if (out / COMPLETE).exists():
        progress.note(f"{component.module} {component.version}: cached ({out.name})")
        return out
    with progress.phase(f"compile {component.module} {component.version}"):
        _go_build(component, out)
    return out


def _go_build(component: GoComponent, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{component.module}-", dir=out.parent))
    ldflags = " ".join(("-s", "-w", *component.ldflags))
    if component.extldflags:
        ldflags += f" -linkmode external -extldflags '{component.extldflags}'"
    argv = ["go", "build", "-trimpath", "-ldflags", ldflags]
    if component.tags:
        argv += ["-tags", ",".join(component.tags)]
    argv += ["-o", str(staging) + "/", *component.packages]
    env = {
        **os.environ,
        "CGO_ENABLED": "1" if component.cgo else "0",
        # Never fetch another toolchain behind the user's back; go.mod files ask for ours.
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-buildvcs=false -mod=readonly",
        **component.env,
    }
    log = out.parent / f"{component.module}.log"
    with log.open("w") as fh:
        proc = subprocess.run(
            argv,
            cwd=GOMOD_DIR / component.module,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        step = f"compile {component.module}"
        raise CommandFailed(argv, proc.returncode, log.read_text(), step=step)
    for package, name in component.packages.items():
        built = staging / _default_binary_name(package)
        if not built.exists():
            raise BuildError(f"go build of {package} produced no binary at {built}; see {log}")
        if built.name != name:
            built.rename(staging / name)
    (staging / COMPLETE).write_text(component.version + "\n")
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def _default_binary_name(package: str) -> str:
    """The name `go build -o dir/` gives a main package: its last non-major-version element."""
    parts = package.split("/")
    last = parts[-1]
    if len(parts) > 1 and last.startswith("v") and last[1:].isdigit():
        return parts[-2]
    return last
