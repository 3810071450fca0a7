"""Snapshots on Docker: a stopped node becomes an image that holds its ``/var`` volume too.

``docker commit`` leaves volumes out, and a node's ``/var`` must be a volume (containerd's
overlayfs snapshotter cannot work on overlayfs; containerd issue 2402). So a node is captured in
two commits: the stopped container as it is (its root file system), then a helper container of
that image into which the volume's files are copied with the archive API. Docker copies the
image's content at a volume's mount point into a new, empty volume when a container is created
(Docker docs, "Volumes": populate a volume using a container), so a node created from the
snapshot image starts with the captured ``/var``.

What goes into that layer is decided in :mod:`var_layer`. The archives stream through a pipe
and are never held in memory or written to disk.
"""

from __future__ import annotations

import os
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

import docker
import docker.errors

from pytest_kindcluster.contract import SNAPSHOT_CAPTURE_STARTED_LABEL
from pytest_kindcluster.errors import EngineError
from pytest_kindcluster.runtime.base import NetworkInfo, SnapshotImage, SnapshotStore
from pytest_kindcluster.runtime.docker.errors import engine_errors
from pytest_kindcluster.runtime.docker.network import bridge_options, find_network, remove_network
from pytest_kindcluster.runtime.docker.streams import CHUNK
from pytest_kindcluster.runtime.docker.var_layer import (
    VAR,
    Signature,
    layer_tar,
    open_stream,
    signature,
)


class DockerSnapshots:
    """:class:`SnapshotStore` on the Docker Engine API."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._listings: dict[str, dict[str, Signature]] = {}
        self._lock = threading.Lock()

    # -- capture ---------------------------------------------------------------------------------

    def stop_node(self, name: str, *, timeout: float) -> None:
        """``docker stop``: the image's stop signal (SIGRTMIN+3) makes systemd shut down."""
        with engine_errors(f"stop node {name!r}"):
            self._client.api.stop(name, timeout=int(timeout))

    def capture_node(
        self,
        node: str,
        ref: str,
        *,
        base_image: str,
        labels: Mapping[str, str],
        extra_files: Mapping[str, bytes],
        moves: Mapping[str, str] | None = None,
    ) -> SnapshotImage:
        """Commit the stopped node, add its ``/var`` and ``extra_files``, tag it ``ref``.

        ``moves`` (directory of ``/var`` -> directory elsewhere): see :func:`layer_tar`.
        """
        api = self._client.api
        started = int(time.time())  # history's Created is whole seconds
        labels = {**labels, SNAPSHOT_CAPTURE_STARTED_LABEL: str(started)}
        base = self._base_listing(base_image)
        repository, tag = ref.rsplit(":", 1)
        made: list[str] = []  # untagged images to drop if the capture does not finish
        with engine_errors(f"commit node {node!r}"):
            made.append(str(api.commit(node)["Id"]))
            helper = str(api.create_container(made[0])["Id"])
        try:
            gone = self._copy_var(node, helper, base, extra_files, moves or {})
            with engine_errors(f"commit the snapshot image {ref}"):
                if gone:
                    image = self._delete_in_image(helper, made, gone, labels)
                else:
                    image = str(api.commit(helper, conf={"Labels": dict(labels)})["Id"])
                made.append(image)
                api.tag(image, repository, tag)
        except BaseException:
            for leftover in reversed(made):  # children first
                with suppress(docker.errors.APIError):
                    api.remove_image(leftover)
            raise
        finally:
            with suppress(docker.errors.APIError):
                api.remove_container(helper, v=True, force=True)
        return self._describe(image, ref)

    def _base_listing(self, image: str) -> dict[str, Signature]:
        """What the node image's own ``/var`` holds, read once per image from a created (never
        started) container."""
        with self._lock:
            if image not in self._listings:
                api = self._client.api
                with engine_errors(f"read /var of image {image!r}"):
                    container = str(api.create_container(image)["Id"])
                    try:
                        chunks, _ = api.get_archive(container, f"/{VAR}", chunk_size=CHUNK)
                        with tarfile.open(fileobj=open_stream(chunks), mode="r|") as tar:
                            self._listings[image] = {m.name: signature(m) for m in tar}
                    finally:
                        api.remove_container(container, v=True, force=True)
            return self._listings[image]

    def _copy_var(
        self,
        node: str,
        helper: str,
        base: Mapping[str, Signature],
        extra_files: Mapping[str, bytes],
        moves: Mapping[str, str],
    ) -> list[str]:
        """Stream the node's ``/var`` (minus what the image has) into the helper's file system."""
        api = self._client.api
        read_fd, write_fd = os.pipe()

        def produce() -> list[str]:
            with os.fdopen(write_fd, "wb") as out:
                chunks, _ = api.get_archive(node, f"/{VAR}", chunk_size=CHUNK)
                return layer_tar(open_stream(chunks), base, extra_files, out, moves=moves)

        def consume() -> Iterator[bytes]:
            while block := reader.read(CHUNK):
                yield block

        with (
            os.fdopen(read_fd, "rb") as reader,
            ThreadPoolExecutor(1, thread_name_prefix="kind-snapshot") as pool,
            engine_errors(f"copy /var of node {node!r} into its snapshot"),
        ):
            produced = pool.submit(produce)
            try:
                api.put_archive(helper, "/", consume())
            finally:
                # If the engine stopped reading, the producer must not block on a full pipe.
                while reader.read(CHUNK):
                    pass
            return produced.result()

    def _delete_in_image(
        self, helper: str, made: list[str], gone: list[str], labels: Mapping[str, str]
    ) -> str:
        """Files the node deleted from the image's ``/var`` must not come back: delete them in
        a short-lived container, then commit it with the node image's entrypoint restored."""
        api = self._client.api
        config = self._client.images.get(made[0]).attrs["Config"]
        staged = str(api.commit(helper)["Id"])
        made.append(staged)
        removed = set(gone)
        # A deleted directory's entries go with it: name only the topmost paths.
        paths = ["/" + name for name in gone if name.rpartition("/")[0] not in removed]
        remover = str(api.create_container(staged, entrypoint=["rm", "-rf", "--", *paths])["Id"])
        try:
            api.start(remover)
            status = api.wait(remover)
            if status.get("StatusCode") != 0:
                output = api.logs(remover).decode(errors="replace")
                raise EngineError("delete files in a snapshot image", output or str(status))
            conf = {
                "Labels": dict(labels),
                "Entrypoint": config.get("Entrypoint"),
                "Cmd": config.get("Cmd"),
            }
            return str(api.commit(remover, conf=conf)["Id"])
        finally:
            api.remove_container(remover, v=True, force=True)

    # -- images ----------------------------------------------------------------------------------

    def images(self, label: str) -> list[SnapshotImage]:
        """Every tagged image carrying ``label``, with the size its own layers add."""
        api = self._client.api
        with engine_errors(f"list images labelled {label}"):
            found = api.images(filters={"label": label})
        out = []
        for image in found:
            for ref in image.get("RepoTags") or []:
                with suppress(docker.errors.NotFound):
                    out.append(self._describe(str(image["Id"]), ref))
        return sorted(out, key=lambda i: i.ref)

    def _describe(self, image_id: str, ref: str) -> SnapshotImage:
        """The image as a SnapshotImage; its size is that of the layers made at capture."""
        image = self._client.images.get(image_id)
        labels = dict(image.attrs["Config"].get("Labels") or {})
        since = int(labels.get(SNAPSHOT_CAPTURE_STARTED_LABEL) or 0)
        layers = image.history()
        size = sum(int(h.get("Size") or 0) for h in layers if int(h.get("Created") or 0) >= since)
        return SnapshotImage(ref, image_id, labels, size)

    def remove_image(self, ref: str) -> bool:
        """``docker rmi``, which also drops the untagged commit below it; False if in use."""
        with engine_errors(f"remove image {ref}"):
            try:
                self._client.api.remove_image(ref, noprune=False)
            except docker.errors.ImageNotFound:
                return True
            except docker.errors.APIError as exc:
                if exc.status_code == 409:
                    return False
                raise
        return True

    # -- networks --------------------------------------------------------------------------------

    def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        """A bridge network for one cluster; IPv4 only (the nodes are), masquerading as kind's.

        A leftover made for one cluster with nothing attached (a crashed run of the same name)
        is taken over.
        """
        exists = find_network(self._client, name) is not None
        if exists and not remove_network(self._client, name):
            raise EngineError(
                f"create network {name!r}", "a network of that name exists and is in use"
            )
        with engine_errors(f"create network {name!r}"):
            self._client.networks.create(
                name,
                driver="bridge",
                options=bridge_options(self._client),
                labels=dict(labels),
                check_duplicate=True,
            )

    def networks(self, label: str) -> list[NetworkInfo]:
        """Every network carrying ``label``, with the number of containers attached."""
        api = self._client.api
        out = []
        with engine_errors(f"list networks labelled {label}"):
            for network in api.networks(filters={"label": label}):
                with suppress(docker.errors.NotFound):
                    attrs = api.inspect_network(network["Id"])
                    containers = len(attrs.get("Containers") or {})
                    out.append(NetworkInfo(attrs["Name"], attrs.get("Labels") or {}, containers))
        return out


_: type[SnapshotStore] = DockerSnapshots
