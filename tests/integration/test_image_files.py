"""Files read out of images without running them: the node-image check and host kubectl.

Both must hold before anything runs privileged. Docker's own event stream proves that the probe
containers were created and removed but never started, and that none is left.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import docker
import pytest

from pytest_kindcluster.errors import ImageError
from pytest_kindcluster.provision.imagecheck import verify_node_image
from pytest_kindcluster.runtime.docker.imagefiles import PROBE_LABEL
from pytest_kindcluster.runtime.docker.runtime import DockerRuntime

pytestmark = pytest.mark.integration


def probe_events(docker_client: docker.DockerClient, since: int) -> list[str]:
    """What happened to probe containers since then, by label: a shared engine is busy."""
    events = docker_client.events(
        since=since, until=int(time.time()) + 1, decode=True,
        filters={"type": "container", "label": PROBE_LABEL},
    )  # fmt: skip
    return [str(e["Action"]) for e in events]


def probes(docker_client: docker.DockerClient) -> list[str]:
    found = docker_client.containers.list(all=True, filters={"label": PROBE_LABEL})
    return [c.name or "" for c in found]


def test_the_node_image_carries_kubectl_and_it_is_copied_without_running_the_image(
    docker_client: docker.DockerClient, node_image: str, tmp_path: Path
) -> None:
    since = int(time.time())
    engine = DockerRuntime()
    kubectl = tmp_path / "kubectl"
    started = time.monotonic()
    assert engine.copy_from_image(node_image, "/usr/bin/kubectl", kubectl)
    print(f"kubectl copied out of {node_image} in {time.monotonic() - started:.2f}s")
    assert kubectl.stat().st_mode & 0o111  # executable, as in the image
    version = subprocess.run(
        [str(kubectl), "version", "--client"], capture_output=True, text=True, check=True
    ).stdout
    assert "v1.37.2" in version
    assert not engine.copy_from_image(node_image, "/usr/bin/no-such-tool", tmp_path / "none")
    assert [p.name for p in tmp_path.iterdir()] == ["kubectl"]  # no temporary file left
    actions = probe_events(docker_client, since)
    # Events have one-second resolution: an earlier probe of the same second may show too.
    assert actions.count("create") == actions.count("destroy") >= 2
    assert "start" not in actions
    assert probes(docker_client) == []


def test_a_non_kind_image_is_refused_before_it_runs_and_says_how_to_get_one(
    docker_client: docker.DockerClient, node_image: str
) -> None:
    since = int(time.time())
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
    actions = probe_events(docker_client, since)
    assert actions.count("create") == actions.count("destroy") >= 2
    assert "start" not in actions
    assert probes(docker_client) == []
