"""Image-level Docker operations the node-image builder needs (import, build container, commit).

Like the node runtime, this is a Docker boundary: ``docker`` errors are translated here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Mount

from pytest_kindcluster.errors import BuildError, CommandFailed
from pytest_kindcluster.runtime.docker.client import connect


class ImageStore:
    """The host engine's images, as the builder sees them."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self.client = client or connect(timeout=1800)

    def labels(self, ref: str) -> dict[str, str] | None:
        """The image's labels, or None when no image has that reference."""
        try:
            image = self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return None
        return dict(image.labels or {})

    def image_id(self, ref: str) -> str | None:
        try:
            return str(self.client.images.get(ref).id)
        except docker.errors.ImageNotFound:
            return None

    def remove_replaced(self, image_id: str) -> bool:
        """Drop an image that a rebuild replaced, unless a container or another tag uses it."""
        try:
            self.client.images.remove(image_id, noprune=False)
        except (docker.errors.ImageNotFound, docker.errors.APIError):
            return False
        return True

    def size(self, ref: str) -> int:
        return int(self.client.images.get(ref).attrs["Size"])

    def import_rootfs(self, tarball: Path, ref: str) -> None:
        """Create an image from a root filesystem tarball (``docker import``)."""
        repository, tag = ref.rsplit(":", 1)
        try:
            self.client.api.import_image_from_file(str(tarball), repository=repository, tag=tag)
        except docker.errors.APIError as exc:
            raise BuildError(f"docker import of {tarball} as {ref} failed: {exc}") from exc

    def load(self, archive: Path) -> list[str]:
        """Load a docker-archive tarball (``docker load``); returns the loaded tags."""
        try:
            with archive.open("rb") as fh:
                images = self.client.images.load(fh)
        except (docker.errors.APIError, docker.errors.ImageLoadError) as exc:
            raise BuildError(f"docker load of {archive} failed: {exc}") from exc
        return [tag for image in images for tag in image.tags]

    def remove(self, ref: str) -> None:
        with suppress(docker.errors.ImageNotFound):
            self.client.images.remove(ref, force=True)

    @contextmanager
    def build_container(self, image: str, binds: Mapping[str, str]) -> Iterator[BuildContainer]:
        """A privileged container of ``image`` idling on ``sleep``, removed on exit."""
        try:
            container = self.client.containers.run(
                image,
                entrypoint=["sleep", "infinity"],
                detach=True,
                privileged=True,
                # Mounts, not -v volumes: a -v destination would be recorded as a VOLUME in
                # the committed image, and every node would get a stray anonymous volume.
                mounts=[
                    Mount(target=inside, source=host, type="bind", read_only=True)
                    for host, inside in binds.items()
                ],
                labels={"io.pytest-kindcluster.build": "node-image"},
            )
        except docker.errors.APIError as exc:
            raise BuildError(f"cannot start a build container from {image}: {exc}") from exc
        try:
            yield BuildContainer(container)
        finally:
            with suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)


class BuildContainer:
    """A running build container: exec commands, then commit it as an image."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def exec(self, argv: Sequence[str], *, detach: bool = False, step: str | None = None) -> str:
        result = self.container.exec_run(list(argv), detach=detach, privileged=True)
        if detach:
            return ""
        raw = result.output if isinstance(result.output, bytes) else b""
        output = raw.decode(errors="replace")
        code = result.exit_code if result.exit_code is not None else -1
        if code != 0:
            raise CommandFailed(argv, code, output, node="build container", step=step)
        return str(output)

    def commit(self, ref: str, changes: Sequence[str]) -> str:
        """Stop the container and commit it; returns the new image ID."""
        repository, tag = ref.rsplit(":", 1)
        # sleep as PID 1 ignores SIGTERM; nothing inside needs a clean shutdown.
        self.container.kill()
        try:
            image = self.container.commit(repository=repository, tag=tag, changes=list(changes))
        except docker.errors.APIError as exc:
            raise BuildError(f"docker commit as {ref} failed: {exc}") from exc
        return str(image.id)
