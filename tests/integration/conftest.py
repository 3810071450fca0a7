"""Integration tests: real Docker, real clusters from the project's node image.

They fail (never skip) when Docker or the node image is missing: a CI run that silently skipped
its integration tests would prove nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial

import docker
import pytest

from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE
from tests import support

# sessions/ holds the inner test files that the integration tests run in a subprocess pytest;
# some match python_files (e.g. long_test.py) and must never be collected by the outer run.
collect_ignore_glob = ["sessions/*"]


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """An independent view of the engine, to check what the plugin left behind."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"integration tests need a Docker engine (scripts/setup-docker.sh): {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def node_image(docker_client: docker.DockerClient) -> str:
    """The project's node image, which must already be built."""
    try:
        docker_client.images.get(DEFAULT_NODE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(
            f"node image {DEFAULT_NODE_IMAGE} is missing; build it with "
            "`python -m pytest_kindcluster node-image build`"
        )
    return DEFAULT_NODE_IMAGE


Leftovers = Callable[[str], dict[str, list[str]]]


@pytest.fixture(scope="session")
def leftovers(docker_client: docker.DockerClient) -> Leftovers:
    """Containers and volumes still carrying a cluster's label."""

    return partial(support.leftovers, docker_client)
