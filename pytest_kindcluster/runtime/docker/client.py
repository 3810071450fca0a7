"""The one place a Docker client is created, so every caller gets the same clear failure."""

from __future__ import annotations

import os

import docker
import docker.errors
import requests.exceptions

from pytest_kindcluster.errors import RuntimeUnavailable

# A dead socket answers at once, but a DOCKER_HOST pointing at a black hole would hang for the
# SDK's default 60 s; ping with a short budget so "no engine" is reported in seconds.
PING_TIMEOUT = 4.0


def describe_endpoint() -> str:
    """Where the client will connect, named the way users configure it."""
    host = os.environ.get("DOCKER_HOST")
    if host:
        return f"DOCKER_HOST={host}"
    return "the socket unix:///var/run/docker.sock (DOCKER_HOST is not set)"


def connect(timeout: int = 120) -> docker.DockerClient:
    """Return a client for the engine named by the environment, after checking it answers."""
    where = describe_endpoint()
    try:
        client = docker.from_env(timeout=int(PING_TIMEOUT))
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise RuntimeUnavailable(
            f"cannot reach a Docker engine at {where}: {exc}. Start dockerd (see the README's "
            "set-up command, scripts/setup-docker.sh) or point DOCKER_HOST at a running engine."
        ) from exc
    # Long operations (image import, commit, exec of kubeadm) need more than the ping budget.
    client.api.timeout = timeout
    return client
