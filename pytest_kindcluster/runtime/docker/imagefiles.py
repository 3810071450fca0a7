"""Files read out of an image without running it: a created, never-started container.

Docker's archive endpoint (``docker cp``) works on a container that was created but never
started, so nothing in the image runs: not its entrypoint, not with privileges. Two callers need
this: the preflight, which must know an image is a kind node image (``/kind/version``) before it
runs it privileged, and host ``kubectl()``, which uses the kubectl binary the node image carries.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import IO

import docker
import docker.errors

from pytest_kindcluster.runtime.docker.errors import engine_errors
from pytest_kindcluster.runtime.docker.streams import CHUNK

# Marks the short-lived probe containers, so a leaked one (a process killed mid-copy) can be
# found: `docker ps -a --filter label=dev.pytest-kindcluster.probe`.
PROBE_LABEL = "dev.pytest-kindcluster.probe"
# Never executed: the container is removed without being started. An explicit entrypoint lets
# images without ENTRYPOINT or CMD be created too.
NEVER_RUN = ["/pytest-kindcluster-never-started"]
# Symlinks followed inside the image (/usr/bin/kubectl may point elsewhere); more is a loop.
MAX_LINKS = 8


def copy_from_image(client: docker.DockerClient, ref: str, path: str, dest: Path) -> bool:
    """Write the regular file ``path`` of image ``ref`` to ``dest`` atomically.

    Returns False when the image has no such file. Symlinks inside the image are followed. The
    file keeps its mode; ``dest`` appears complete or not at all, so concurrent callers are safe.
    """
    api = client.api
    with engine_errors(f"create a never-started container of image {ref!r}"):
        container = api.create_container(
            ref, entrypoint=NEVER_RUN, labels={PROBE_LABEL: "true"}, network_disabled=True
        )["Id"]
    try:
        return _copy(api, container, ref, path, dest)
    finally:
        with engine_errors(f"remove probe of {ref!r}"), suppress(docker.errors.NotFound):
            api.remove_container(container, v=True, force=True)


def _copy(api: docker.APIClient, container: str, ref: str, path: str, dest: Path) -> bool:
    for _ in range(MAX_LINKS):
        with tempfile.TemporaryFile() as spool:
            with engine_errors(f"read {path} from image {ref!r}"):
                try:
                    stream, _stat = api.get_archive(container, path, chunk_size=CHUNK)
                except docker.errors.NotFound:
                    return False
                for chunk in stream:
                    spool.write(chunk)
            spool.seek(0)
            with tarfile.open(fileobj=spool) as archive:
                member = archive.next()
                if member is None:
                    return False
                if member.issym():
                    base = posixpath.dirname(path)
                    path = posixpath.normpath(posixpath.join(base, member.linkname))
                    continue
                source = archive.extractfile(member) if member.isfile() else None
                if source is None:  # a directory, a device: not a file to copy
                    return False
                _write_atomically(source, dest, member.mode)
                return True
    return False


def _write_atomically(source: IO[bytes], dest: Path, mode: int) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}-")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        Path(tmp).chmod(mode & 0o777)
        Path(tmp).replace(dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
