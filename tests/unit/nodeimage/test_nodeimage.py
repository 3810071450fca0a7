"""Unit tests of the node-image builder's logic (no Docker, no compiler)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from pytest_kindcluster.errors import BuildError
from pytest_kindcluster.nodeimage import rootfs, versions
from pytest_kindcluster.nodeimage.archive import Image, Layer, write_archive
from pytest_kindcluster.nodeimage.build import _normalise, collect_bin_dir
from pytest_kindcluster.nodeimage.build_progress import BuildProgress
from pytest_kindcluster.nodeimage.gobuild import _default_binary_name


def _binary(tmp_path: Path, name: str, body: bytes = b"\x7fELF") -> Path:
    path = tmp_path / name
    path.write_bytes(body)
    path.chmod(0o755)
    return path


def test_layer_is_deterministic_and_carries_parents(tmp_path: Path) -> None:
    src = _binary(tmp_path, "etcd")
    one = Layer().add_file("/usr/local/bin/etcd", src).add_symlink("/bin", "usr/bin")
    two = Layer().add_symlink("/bin", "usr/bin").add_file("/usr/local/bin/etcd", src)
    assert one.diff_id() == two.diff_id()
    with tarfile.open(fileobj=io.BytesIO(one.blob())) as tar:
        names = tar.getnames()
        member = tar.getmember("usr/local/bin/etcd")
    assert names == ["bin", "usr", "usr/local", "usr/local/bin", "usr/local/bin/etcd"]
    assert member.mode == 0o755
    assert member.mtime == 0


def test_layer_digest_changes_with_content(tmp_path: Path) -> None:
    a = Layer().add_file("/x", _binary(tmp_path, "a", b"one"))
    b = Layer().add_file("/x", _binary(tmp_path, "b", b"two"))
    assert a.diff_id() != b.diff_id()


def test_archive_shares_layers_and_lists_tags(tmp_path: Path) -> None:
    shared = Layer().add_file("/usr/sbin/ipset", _binary(tmp_path, "ipset"))
    images = [
        Image(
            tags=["registry.k8s.io/kube-proxy:v1.37.2"],
            layers=[shared],
            entrypoint=["/usr/local/bin/kube-proxy"],
        ),
        Image(tags=["docker.io/x/kube-router:v2.1.0"], layers=[shared]),
    ]
    dest = write_archive(images, tmp_path / "images.tar")
    with tarfile.open(dest) as tar:
        names = tar.getnames()
        member = tar.extractfile("manifest.json")
        assert member is not None
        manifest = json.load(member)
        config_file = tar.extractfile(manifest[0]["Config"])
        assert config_file is not None
        config = json.load(config_file)
    assert sum(name.endswith("layer.tar") for name in names) == 1
    assert [m["RepoTags"] for m in manifest] == [
        ["registry.k8s.io/kube-proxy:v1.37.2"],
        ["docker.io/x/kube-router:v2.1.0"],
    ]
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/kube-proxy"]
    assert config["rootfs"]["diff_ids"] == [shared.diff_id()]


def test_bin_dir_names_every_missing_binary(tmp_path: Path) -> None:
    _binary(tmp_path, "kubelet")
    with pytest.raises(BuildError) as info:
        collect_bin_dir(tmp_path)
    message = str(info.value)
    assert "etcd" in message
    assert "coredns" in message
    assert f"lacks {len(versions.REQUIRED_BINARIES) - 1} required binaries" in message


def test_bin_dir_complete(tmp_path: Path) -> None:
    for name in versions.REQUIRED_BINARIES:
        _binary(tmp_path, name)
    found = collect_bin_dir(tmp_path)
    assert set(found) == set(versions.REQUIRED_BINARIES)


def test_bin_dir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="is not a directory"):
        collect_bin_dir(tmp_path / "nope")


@pytest.mark.parametrize(
    ("package", "name"),
    [
        ("go.etcd.io/etcd/server/v3", "server"),
        ("k8s.io/kubernetes/cmd/kubelet", "kubelet"),
        ("github.com/coredns/coredns", "coredns"),
        ("github.com/cloudnativelabs/kube-router/v2/cmd/kube-router", "kube-router"),
    ],
)
def test_default_binary_name(package: str, name: str) -> None:
    assert _default_binary_name(package) == name


@pytest.mark.parametrize(
    ("ref", "full"),
    [
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36"),
        ("registry.k8s.io/pause:3.10.2", "registry.k8s.io/pause:3.10.2"),
        (
            "pytest-kindcluster/kube-router:v2.1.0",
            "docker.io/pytest-kindcluster/kube-router:v2.1.0",
        ),
        ("localhost/x:1", "localhost/x:1"),
    ],
)
def test_normalise_matches_containerd_names(ref: str, full: str) -> None:
    assert _normalise(ref) == full


def test_progress_reports_phases_with_timings() -> None:
    out = io.StringIO()
    progress = BuildProgress(total=2, stream=out)
    with progress.phase("first"):
        pass
    with pytest.raises(ValueError, match="boom"), progress.phase("second"):
        raise ValueError("boom")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/2] first ..."
    assert lines[1].startswith("[1/2] first done in ")
    assert lines[3].startswith("[2/2] second FAILED after ")
    assert set(progress.timings) == {"first"}


def test_every_required_binary_comes_from_one_component() -> None:
    assert len(versions.REQUIRED_BINARIES) == len(set(versions.REQUIRED_BINARIES))
    assert {"kubeadm", "kubelet", "etcd", "coredns", "runc", "containerd"} <= set(
        versions.REQUIRED_BINARIES
    )


def test_debootstrap_argv_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr("os.geteuid", lambda: 0)

    def fake_run(argv: list[str], step: str, **kwargs: object) -> str:
        calls.append(list(argv))
        return ""

    monkeypatch.setattr(rootfs, "run", fake_run)
    stale = tmp_path / "dest"
    stale.mkdir()
    (stale / "old").write_text("from a failed run")
    rootfs.debootstrap(stale, ("systemd", "haproxy"), tmp_path / "cache", "http://mirror/debian")
    assert not stale.exists()  # a half-made tree from an earlier failure is cleared first
    assert calls == [
        [
            "debootstrap",
            "--variant=minbase",
            "--include=systemd,haproxy",
            f"--cache-dir={tmp_path / 'cache' / 'debs' / versions.DEBIAN_SUITE}",
            versions.DEBIAN_SUITE,
            str(stale),
            "http://mirror/debian",
        ]
    ]
    assert (tmp_path / "cache" / "debs" / versions.DEBIAN_SUITE).is_dir()


def test_debootstrap_names_the_missing_tool(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(BuildError, match="apt-get install -y debootstrap"):
        rootfs.debootstrap(tmp_path / "d", ("systemd",), tmp_path, "http://mirror/debian")


def test_default_node_image_tag_is_the_pinned_kubernetes_version() -> None:
    # The lifecycle runs DEFAULT_NODE_IMAGE and the builder tags its image with the pin: a bump of
    # one without the other would make every default session fail with "image missing".
    assert DEFAULT_NODE_IMAGE.rpartition(":")[2] == versions.KUBERNETES
