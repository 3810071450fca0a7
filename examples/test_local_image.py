"""Build an image on the host, load it into the cluster, and run it: no registry involved."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import docker
import pytest

from pytest_kindcluster import KindCluster

DOCKERFILE = """\
FROM busybox:1.36
RUN echo 'echo "the answer is $((6 * 7))"' > /answer.sh
CMD ["sh", "/answer.sh"]
"""

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {{name: answer, namespace: {ns}}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: answer
        image: {image}
        # Never pull: the image exists only on the host and, once loaded, in the nodes.
        imagePullPolicy: Never
"""


@pytest.fixture(scope="module")
def local_image() -> Iterator[str]:
    """A freshly built image with a unique tag, removed from the host afterwards."""
    client = docker.from_env()
    tag = f"example/answer:{uuid.uuid4().hex[:8]}"
    client.images.build(fileobj=io.BytesIO(DOCKERFILE.encode()), tag=tag, pull=False, rm=True)
    yield tag
    client.images.remove(tag, force=True)


def test_load_and_run_a_local_image(
    kind_cluster: KindCluster, kind_namespace: str, local_image: str
) -> None:
    loaded = kind_cluster.load_docker_image(local_image)
    assert loaded == [node.name for node in kind_cluster.nodes]
    # Loading again is free: every node already holds that image ID.
    assert kind_cluster.load_docker_image(local_image) == []

    kind_cluster.apply(JOB.format(ns=kind_namespace, image=local_image))
    kind_cluster.kubectl(
        "wait", "--for=condition=complete", "job/answer", "-n", kind_namespace, "--timeout=120s"
    )
    assert kind_cluster.kubectl("logs", "job/answer", "-n", kind_namespace) == "the answer is 42\n"
