"""Files read out of images without running them: the node-image check and host kubectl.

Both must hold before anything runs privileged: Docker's own event stream proves that no
container of the image was ever started, and no probe container is left.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pytest_kindcluster.errors import ImageError
from pytest_kindcluster.provision.imagecheck import verify_node_image
from pytest_kindcluster.runtime.docker.imagefiles import PROBE_LABEL
from pytest_kindcluster.runtime.docker.runtime import DockerRuntime

pytestmark = pytest.mark.integration


@pytest.fixture
def started_containers(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """The images of every container started while the test ran (filled in afterwards)."""
    since = int(time.time()) - 1
    images: list[str] = []
    yield images
    events = docker_client.events(
        since=since, until=int(time.time()) + 1, decode=True,
        filters={"type": "container", "event": "start"},
    )  # fmt: skip
    images.extend(str(e.get("Actor", {}).get("Attributes", {}).get("image")) for e in events)


def probes(docker_client: docker.DockerClient) -> list[str]:
    found = docker_client.containers.list(all=True, filters={"label": PROBE_LABEL})
    return [c.name or "" for c in found]


def test_the_node_image_carries_kubectl_and_it_is_copied_without_running_the_image(
    docker_client: docker.DockerClient, node_image: str, tmp_path: Path
) -> None:
    engine = DockerRuntime()
    since = int(time.time()) - 1
    kubectl = tmp_path / "kubectl"
    assert engine.copy_from_image(node_image, "/usr/bin/kubectl", kubectl)
    assert kubectl.stat().st_mode & 0o111  # executable, as in the image
    version = subprocess.run(
        [str(kubectl), "version", "--client"], capture_output=True, text=True, check=True
    ).stdout
    assert "v1.37.2" in version
    assert not engine.copy_from_image(node_image, "/usr/bin/no-such-tool", tmp_path / "none")
    assert not (tmp_path / "none").exists()
    events = docker_client.events(since=since, until=int(time.time()) + 1, decode=True,
                                  filters={"type": "container", "image": node_image})  # fmt: skip
    actions = [e["Action"] for e in events]
    assert actions.count("create") == 2
    assert "start" not in actions
    assert probes(docker_client) == []
    assert [p.name for p in tmp_path.iterdir()] == ["kubectl"]  # no temporary file left


def test_a_non_kind_image_is_refused_before_it_runs_and_says_how_to_get_one(
    docker_client: docker.DockerClient, node_image: str, started_containers: list[str]
) -> None:
    # busybox:1.36 is in the engine (the node-image build loads it), but it is no node image.
    docker_client.images.get("busybox:1.36")
    engine = DockerRuntime()
    with pytest.raises(ImageError) as info:
        verify_node_image(engine, "busybox:1.36")
    assert str(info.value).startswith(
        "busybox:1.36 is not a kind node image: it has no /kind/version (checked before running "
        "it, in a container that was never started); build the node image with "
        "`python -m pytest_kindcluster node-image build`, `docker load` a saved one, or use a "
        "kindest/node image"
    )
    assert verify_node_image(engine, node_image) == "v1.37.2"
    assert probes(docker_client) == []
    assert started_containers == []
