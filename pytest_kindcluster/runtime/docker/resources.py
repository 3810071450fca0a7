"""Docker operations for crash safety: labelled leftovers (reaper, ``--kind-prune``), pulls."""

from __future__ import annotations

import docker
import docker.errors

from pytest_kindcluster.errors import ImageError
from pytest_kindcluster.runtime.base import LabelledResources, Resource
from pytest_kindcluster.runtime.docker.client import connect
from pytest_kindcluster.runtime.docker.errors import engine_errors


class DockerResources:
    """Lists and removes by label; removal is best effort and never raises for "already gone"."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client if client is not None else connect()

    def labelled(self, label: str) -> list[Resource]:
        """Every container (running or not), then every volume, that carries ``label``."""
        api = self._client.api
        with engine_errors(f"list containers and volumes labelled {label}"):
            containers = api.containers(all=True, filters={"label": label})
            volumes = api.volumes(filters={"label": label}).get("Volumes") or []
        found = [
            # The list API names containers "/name"; the rest of the package uses bare names.
            Resource("container", str(c["Names"][0]).lstrip("/"), c.get("Labels") or {})
            for c in containers
        ]
        found += [Resource("volume", str(v["Name"]), v.get("Labels") or {}) for v in volumes]
        return found

    def remove(self, resource: Resource) -> bool:
        """``docker rm -f -v`` a container, or ``docker volume rm`` a volume nothing uses."""
        api = self._client.api
        with engine_errors(f"remove {resource.kind} {resource.name}"):
            try:
                if resource.kind == "container":
                    api.remove_container(resource.name, v=True, force=True)
                else:
                    api.remove_volume(resource.name)
            except docker.errors.NotFound:
                return resource.kind == "container"  # someone else removed it: fine
            except docker.errors.APIError as exc:
                if exc.status_code == 409:  # a volume still in use: not ours to take
                    return False
                raise
        return True


_: type[LabelledResources] = DockerResources


def pull_image(client: docker.DockerClient, ref: str) -> None:
    """``docker pull ref``, translated: a failure is an ImageError carrying the engine's reason."""
    try:
        client.images.pull(ref)  # the SDK splits tag or digest off the reference
    except docker.errors.APIError as exc:  # ImageNotFound too: an error inside the pull stream
        raise ImageError(f"cannot pull {ref}: {exc.explanation or exc}") from exc
