"""pytest-kind users can switch: a suite written as pytest-kind documents it runs unchanged."""

from __future__ import annotations

import re
import shutil
from io import BytesIO
from typing import Any

import docker
import pytest

from tests.support import SESSIONS

pytestmark = pytest.mark.integration

SUITE = SESSIONS / "pytest_kind_suite"
APP = "pytest-kind-style/myapp:dev"
# The app: busybox's httpd serving one file, so GET /hello/world answers "Hello world!".
DOCKERFILE = """FROM busybox:1.36
RUN mkdir -p /www/hello && printf 'Hello world!' > /www/hello/world
"""


def test_a_pytest_kind_suite_runs_unchanged(
    pytester: pytest.Pytester, docker_client: docker.DockerClient, node_image: str, leftovers: Any
) -> None:
    docker_client.images.build(fileobj=BytesIO(DOCKERFILE.encode()), tag=APP, rm=True, pull=False)
    # The suite and its manifest, in the directory pytest runs from (as in pytest-kind's
    # example, which applies "deployment.yaml" relative to it).
    for file in ("test_myapp.py", "deployment.yaml"):
        shutil.copy(SUITE / file, pytester.path / file)
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider -p no:randomly\n")
    try:
        result = pytester.runpytest_subprocess(
            "test_myapp.py", "-v", f"--kind-image={node_image}", timeout=1500
        )
    finally:
        docker_client.images.remove(APP, force=True)
    result.assert_outcomes(passed=5)
    found = re.search(r"name=(pytest-[0-9a-f]{8}) \(default\)", result.stdout.str())
    assert found is not None
    result.stdout.fnmatch_lines([f"kind {found[1]}: deleted"])
    assert leftovers(found[1]) == {"containers": [], "volumes": []}
