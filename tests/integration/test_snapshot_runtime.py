"""The Docker side of a snapshot, without a cluster: a stopped container with a /var volume
becomes an image whose new containers start with that /var, deletions and moves included."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import docker
import pytest
from docker.types import Mount

from pytest_kindcluster.runtime.docker.runtime import DockerRuntime
from tests.support import unique

pytestmark = pytest.mark.integration

SNAPSHOTS = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots"
# What a node does to its /var while it runs: deletes a file of the image, adds one, and has
# containerd unpack a layer.
CHANGES = (
    "rm -rf /var/log/README /var/lib/dpkg/alternatives && echo added > /var/added && "
    f"mkdir -p {SNAPSHOTS}/1/fs && echo layer > {SNAPSHOTS}/1/fs/file"
)


@pytest.fixture
def stopped_node(docker_client: docker.DockerClient, node_image: str) -> Iterator[str]:
    name = unique("it-snaprt")
    container = docker_client.containers.create(
        node_image,
        name=name,
        entrypoint=["sh", "-c", CHANGES],
        mounts=[Mount("/var", None, type="volume")],
    )
    container.start()
    assert container.wait()["StatusCode"] == 0
    yield name
    container.remove(v=True, force=True)


def read(client: docker.DockerClient, image: str, path: str) -> dict[str, tarfile.TarInfo]:
    """The archive of ``path`` in a new container of ``image`` with a fresh /var volume."""
    container = client.containers.create(image, mounts=[Mount("/var", None, type="volume")])
    try:
        chunks, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r") as tar:
            return {m.name: m for m in tar}
    finally:
        container.remove(v=True, force=True)


def test_capture_keeps_var_deletions_and_moves_and_the_entrypoint(
    docker_client: docker.DockerClient, node_image: str, stopped_node: str
) -> None:
    store = DockerRuntime().snapshots()
    ref = f"kindcluster-test/snapshot:{stopped_node}"
    image = store.capture_node(
        stopped_node,
        ref,
        base_image=node_image,
        labels={"kindcluster-test": "runtime"},
        extra_files={"/kind/marker": b"extra\n"},
        moves={SNAPSHOTS: "/kind/containerd-snapshots"},
    )
    try:
        assert image.ref == ref
        assert image.labels["kindcluster-test"] == "runtime"
        # Only the capture's layers count, not the node image's 1 GB.
        assert 0 < image.size < 50e6
        var = read(docker_client, ref, "/var")
        assert "var/added" in var
        assert "var/log/README" not in var  # deleted by the node: not back from the image
        assert "var/lib/dpkg/alternatives" not in var
        assert "var/lib/dpkg/info" in var  # untouched files of the image are all there
        assert var["var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/1"].issym()
        kept = read(docker_client, ref, "/kind")
        assert kept["kind/containerd-snapshots/1/fs/file"].size == len(b"layer\n")
        assert kept["kind/marker"].size == len(b"extra\n")
        config = docker_client.images.get(ref).attrs["Config"]
        captured = docker_client.api.inspect_container(stopped_node)["Config"]
        assert config["Entrypoint"] == captured["Entrypoint"]  # not the remover's rm
        assert config["StopSignal"] == "SIGRTMIN+3"  # the node image's, kept
        assert [i.ref for i in store.images("kindcluster-test=runtime")] == [ref]
    finally:
        assert store.remove_image(ref)
    # The untagged commits below it went with it.
    assert docker_client.images.list(all=True, filters={"label": "kindcluster-test=runtime"}) == []
