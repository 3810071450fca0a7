"""kubectl on the host, with nothing downloaded: the binary the node image itself carries.

Every kind node image has kubectl at ``/usr/bin/kubectl`` (kind: ``images/base`` and
``pkg/build/nodeimage``), built for the engine's platform. It is copied out of the image once, from
a container that is created and never started, and cached by image ID: an image ID names its
content, so the copy never goes stale and a rebuilt image gets its own. It then runs as a host
kubectl would, in the caller's working directory with the cluster's private kubeconfig as
``KUBECONFIG``, so ``kubectl("apply", "-f", "deploy.yaml")`` reads the host's file.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from filelock import FileLock

from pytest_kindcluster.errors import CommandFailed, KindClusterError
from pytest_kindcluster.runtime.base import HostImages
from pytest_kindcluster.util.cache import default_cache_dir

KUBECTL_IN_IMAGE = "/usr/bin/kubectl"
# A copy and a check of the binary are bounded; kubectl commands themselves are not, since
# `rollout status` or `wait` may rightly take minutes (they have their own --timeout).
PROBE_TIMEOUT = 30.0


def cache_path(image_id: str, cache_dir: Path | None = None) -> Path:
    """``<cache>/kubectl/<image id>/kubectl``; the ID without its ``sha256:`` prefix."""
    key = image_id.split(":", 1)[-1]
    return (cache_dir or default_cache_dir()) / "kubectl" / key / "kubectl"


def from_image(images: HostImages, image: str, cache_dir: Path | None = None) -> Path | None:
    """The cached kubectl of ``image`` (copied out on first use); None if it has none.

    None too when the image is not in the engine: nothing is pulled for a kubectl.
    """
    image_id = images.image_id(image)
    if image_id is None:
        return None
    path = cache_path(image_id, cache_dir)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        # The copy is atomic anyway; the lock spares concurrent workers a second 50 MB copy.
        with FileLock(str(path.parent / ".lock"), timeout=300):
            if not path.is_file() and not images.copy_from_image(image, KUBECTL_IN_IMAGE, path):
                return None
    return path if runs_here(path) else None


@functools.cache
def runs_here(path: Path) -> bool:
    """Whether the binary runs on this host (a remote engine's image may be for another OS)."""
    try:
        done = subprocess.run(
            [str(path), "version", "--client"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def run(
    kubectl: Path,
    kubeconfig: Path,
    args: Sequence[str],
    *,
    stdin: str | bytes | None = None,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``kubectl args`` against ``kubeconfig``; stdout, or :class:`CommandFailed`.

    The environment is the caller's (exec credential plugins need ``PATH`` and ``HOME``) with
    ``KUBECONFIG`` pointing at the cluster's file, which an explicit ``--kubeconfig`` overrides.
    kubectl's discovery cache goes next to that file (``KUBECACHEDIR``), not into the user's
    ``~/.kube/cache``, unless the caller set ``KUBECACHEDIR`` already.
    """
    argv = [str(kubectl), *args]
    data = stdin.encode() if isinstance(stdin, str) else stdin
    try:
        done = subprocess.run(
            argv,
            input=data,
            stdin=subprocess.DEVNULL if data is None else None,
            capture_output=True,
            env={
                "KUBECACHEDIR": str(kubeconfig.parent / "cache"),
                **os.environ,
                **(env or {}),
                "KUBECONFIG": str(kubeconfig),
            },
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        partial = bytes(exc.stdout or b"") + bytes(exc.stderr or b"")
        text = partial.decode(errors="replace") + f"\n(timed out after {timeout}s)"
        raise CommandFailed(argv, -1, text) from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).decode(errors="replace")
        raise CommandFailed(argv, done.returncode, output)
    return done.stdout.decode(errors="replace")


def on_path() -> Path | None:
    """A kubectl on ``PATH`` that runs here, or None."""
    found = shutil.which("kubectl")
    return Path(found) if found and runs_here(Path(found)) else None


def find(images: HostImages | None, image: str, cache_dir: Path | None = None) -> Path | None:
    """``image``'s kubectl if the engine has the image, else one on ``PATH``, else None."""
    found = from_image(images, image, cache_dir) if images is not None else None
    return found or on_path()


def require(images: HostImages | None, image: str, error: type[KindClusterError]) -> Path:
    """:func:`find`, or ``error`` saying where kubectl was looked for and how to get one."""
    found = find(images, image)
    if found is None:
        where = (
            "is not in the engine"
            if images is None or images.image_id(image) is None
            else (f"has no {KUBECTL_IN_IMAGE} that runs on this host")
        )
        raise error(
            f"no kubectl to run: the node image {image} {where}, and there is no kubectl on "
            "PATH. Build it with `python -m pytest_kindcluster node-image build` (or `docker "
            "load` a kind node image), or install kubectl"
        )
    return found
