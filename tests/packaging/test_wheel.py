"""The package as users get it: the built wheel, installed into a fresh virtualenv (not editable).

Everything the installed copy runs, it runs from outside the repository, so nothing of the
checkout (its conftest.py, its source tree on ``sys.path``) can stand in for a missing file.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pytest_kindcluster"
# What `node-image build` reads at run time besides Python modules.
BUILDER_DIRS = ("nodeimage/files", "nodeimage/gomod", "nodeimage/pause")

# The builder's inputs as the running copy of the package sees them: where they are, and the
# keys the build derives from them (the rootfs files' hash enters the image's build key; each Go
# wrapper module's files enter its binary-cache key).
FINGERPRINT = """
import json, importlib.resources
import pytest_kindcluster
from pytest_kindcluster.nodeimage import cache, extras, gobuild, rootfs, versions
files = importlib.resources.files("pytest_kindcluster.nodeimage")
print(json.dumps({
    "package": pytest_kindcluster.__file__,
    "resources": [str(files / d) for d in ("files", "gomod", "pause")],
    "resolved": [str(rootfs.FILES_DIR), str(gobuild.GOMOD_DIR), str(extras.PAUSE_SOURCE.parent)],
    "files_hash": cache.hash_tree(rootfs.FILES_DIR),
    "pause_source": extras.PAUSE_SOURCE.read_text(),
    "go_keys": {c.module: gobuild.component_key(c, "go-x") for c in versions.COMPONENTS},
}))
"""


def clean_env() -> dict[str, str]:
    """The environment without anything that points Python at the checkout or at .venv."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def run(*args: str | Path, cwd: Path) -> str:
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, ROOT, cwd=out)
    (built,) = out.glob("pytest_kindcluster-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the wheel and its dependencies, nothing else."""
    env = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", env, cwd=env)
    run(env / "bin" / "python", "-m", "pip", "install", "-q", wheel, cwd=env)
    return env


def source_files(subdir: str) -> dict[str, int]:
    """The checkout's files below ``pytest_kindcluster/<subdir>``, with their permission bits."""
    return {
        p.relative_to(ROOT).as_posix(): p.stat().st_mode & 0o777
        for p in (PACKAGE / subdir).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_wheel_carries_every_builder_file_with_its_mode(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
    for subdir in BUILDER_DIRS:
        expected = source_files(subdir)
        assert expected, f"no files under {subdir}: the test is looking in the wrong place"
        missing = sorted(set(expected) - set(modes))
        assert missing == [], f"the wheel lacks {missing}"
        for name, mode in expected.items():
            # The node's entrypoint and scripts are copied into the image with `cp -a`.
            executable = bool(mode & stat.S_IXUSR)
            assert bool(modes[name] & stat.S_IXUSR) == executable, f"{name}: mode {modes[name]:o}"


def test_installed_plugin_loads_and_runs_a_test(venv: Path, tmp_path: Path) -> None:
    help_text = run(venv / "bin" / "pytest", "--help", cwd=tmp_path)
    assert "--kind-image=REF" in help_text
    (tmp_path / "test_installed.py").write_text(
        "import pytest_kindcluster\n\n"
        "def test_fixture_from_the_wheel(kind_settings):\n"
        f"    assert kind_settings.image == {DEFAULT_NODE_IMAGE!r}\n"
        f"    assert pytest_kindcluster.__file__.startswith({str(venv)!r})\n"
    )
    out = run(venv / "bin" / "pytest", "-p", "no:cacheprovider", "test_installed.py", cwd=tmp_path)
    assert f"kindcluster: image={DEFAULT_NODE_IMAGE} (default)" in out
    assert "1 passed" in out


def test_node_image_builder_runs_from_the_wheel_with_the_checkouts_inputs(
    venv: Path, tmp_path: Path
) -> None:
    help_text = run(
        venv / "bin" / "python",
        "-m",
        "pytest_kindcluster",
        "node-image",
        "build",
        "--help",
        cwd=tmp_path,
    )
    assert "--bin-dir" in help_text
    installed = json.loads(run(venv / "bin" / "python", "-c", FINGERPRINT, cwd=tmp_path))
    checkout = json.loads(run(sys.executable, "-c", FINGERPRINT, cwd=ROOT))
    site = str(venv / "lib")
    assert installed["package"].startswith(site), installed["package"]
    assert checkout["package"].startswith(str(ROOT)), "compare against the checkout itself"
    # importlib.resources and the builder's own paths agree, and both are inside the venv.
    assert installed["resources"] == installed["resolved"]
    assert all(p.startswith(site) and Path(p).is_dir() for p in installed["resolved"])
    # Same inputs, same keys: an installed builder reuses the binary cache and makes the same
    # image as the checkout does.
    for key in ("files_hash", "pause_source", "go_keys"):
        assert installed[key] == checkout[key], key
