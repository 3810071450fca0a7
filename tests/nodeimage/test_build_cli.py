"""The node-image builder's command line, run for real against the Docker engine.

These reuse the compile cache that `scripts/setup.sh` fills; they fail (not skip) when the
engine or the cache is missing, as every cluster-side test does in CI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import docker
import pytest

from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from pytest_kindcluster.nodeimage import versions
from pytest_kindcluster.nodeimage.build import KEY_LABEL, VERSION_LABEL
from pytest_kindcluster.nodeimage.cache import default_cache_dir
from pytest_kindcluster.nodeimage.gobuild import go_version, is_cached, output_dir

pytestmark = pytest.mark.integration


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_kindcluster", "node-image", "build", *args],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def compiled_bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --bin-dir of symlinks to the compiled, cached components."""
    toolchain = go_version()
    cache = default_cache_dir()
    bin_dir = tmp_path_factory.mktemp("bin")
    for component in versions.COMPONENTS:
        assert is_cached(component, cache, toolchain), (
            f"{component.module} is not compiled yet; run scripts/setup.sh first"
        )
        out = output_dir(component, cache, toolchain)
        for name in component.packages.values():
            (bin_dir / name).symlink_to(out / name)
    return bin_dir


def test_default_build_is_up_to_date_and_prints_reference_last() -> None:
    result = run_cli()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == DEFAULT_NODE_IMAGE
    assert "is up to date" in result.stderr
    labels = docker.from_env().images.get(DEFAULT_NODE_IMAGE).labels
    assert labels[VERSION_LABEL] == versions.KUBERNETES
    assert labels[KEY_LABEL]


def test_bin_dir_assembles_a_node_image(compiled_bin_dir: Path) -> None:
    tag = "pytest-kindcluster/node-test:bin-dir"
    client = docker.from_env()
    try:
        result = run_cli("--bin-dir", str(compiled_bin_dir), "--tag", tag, "--force")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == tag
        assert "preload images into containerd and commit" in result.stderr
        image = client.images.get(tag)
        assert image.attrs["Config"]["Entrypoint"] == ["/usr/local/bin/entrypoint", "/sbin/init"]
        assert "container=docker" in image.attrs["Config"]["Env"]
        # A stray VOLUME would give every node an extra anonymous volume.
        assert not image.attrs["Config"].get("Volumes")
        out = client.containers.run(tag, entrypoint=["cat"], command=["/kind/version"], remove=True)
        assert out.decode().strip() == versions.KUBERNETES
        listing = client.containers.run(
            tag, entrypoint=["ls"], command=["/kind/manifests"], remove=True
        ).decode()
        assert set(listing.split()) == {"default-cni.yaml", "default-storage.yaml"}
    finally:
        if client.images.list(name=tag):
            client.images.remove(tag, force=True)


def test_bin_dir_names_missing_binaries(tmp_path: Path) -> None:
    (tmp_path / "kubelet").write_bytes(b"")
    result = run_cli("--bin-dir", str(tmp_path), "--tag", "pytest-kindcluster/never:built")
    assert result.returncode == 1
    assert "lacks" in result.stderr
    for name in ("etcd", "coredns", "kube-apiserver", "runc"):
        assert name in result.stderr
    assert docker.from_env().images.list(name="pytest-kindcluster/never") == []
