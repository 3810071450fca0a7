"""The container images preloaded into the node, made from binaries without any registry."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_kindcluster.errors import BuildError
from pytest_kindcluster.nodeimage import versions
from pytest_kindcluster.nodeimage.archive import Image, Layer
from pytest_kindcluster.nodeimage.rootfs import run, shared_library_closure

# Network tools kube-proxy and kube-router run, taken from the node's own Debian rootfs so their
# iptables matches the node's. Debian's iptables is xtables-nft-multi behind alternatives links.
NET_PROGRAMS = (
    "/usr/sbin/xtables-nft-multi",
    "/usr/sbin/xtables-legacy-multi",
    "/usr/sbin/nft",
    "/usr/sbin/ipset",
    "/usr/sbin/conntrack",
    "/usr/bin/ip",
)
IPTABLES_NAMES = (
    "iptables",
    "iptables-save",
    "iptables-restore",
    "ip6tables",
    "ip6tables-save",
    "ip6tables-restore",
)
XTABLES_DIR = "usr/lib/x86_64-linux-gnu/xtables"


@dataclass(frozen=True)
class KubeadmImages:
    """The image references kubeadm asks for, read from the kubeadm binary itself."""

    apiserver: str
    controller_manager: str
    scheduler: str
    proxy: str
    pause: str
    etcd: str
    coredns: str


def kubeadm_images(kubeadm: Path, kube_version: str) -> KubeadmImages:
    """Ask kubeadm which images it will use, so the preloaded names match exactly."""
    out = run(
        [str(kubeadm), "config", "images", "list", f"--kubernetes-version={kube_version}"],
        step="kubeadm config images list",
    )
    refs = out.split()
    by_name = {ref.rsplit(":", 1)[0].rsplit("/", 1)[-1]: ref for ref in refs}
    try:
        return KubeadmImages(
            apiserver=by_name["kube-apiserver"],
            controller_manager=by_name["kube-controller-manager"],
            scheduler=by_name["kube-scheduler"],
            proxy=by_name["kube-proxy"],
            pause=by_name["pause"],
            etcd=by_name["etcd"],
            coredns=by_name["coredns"],
        )
    except KeyError as exc:
        raise BuildError(f"kubeadm listed no {exc} image; it printed: {out!r}") from exc


def binary_version(binary: Path) -> str:
    """``vX.Y.Z`` from ``kubelet --version`` (prints ``Kubernetes vX.Y.Z``)."""
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    words = out.stdout.split()
    if out.returncode != 0 or not words or not words[-1].startswith("v"):
        raise BuildError(f"cannot read a version from {binary} --version: {out.stdout}{out.stderr}")
    return words[-1]


def net_tools_layer(rootfs: Path) -> Layer:
    """iptables (nft and legacy), nft, ipset, conntrack and ip with their libraries."""
    xtables = sorted((rootfs / XTABLES_DIR).glob("*.so"))
    programs = [*NET_PROGRAMS, *("/" + p.relative_to(rootfs).as_posix() for p in xtables)]
    layer = Layer()
    for path in sorted(set(programs) | shared_library_closure(rootfs, programs)):
        real = (rootfs / path.lstrip("/")).resolve()
        if not str(real).startswith(str(rootfs.resolve())):
            raise BuildError(f"{path} in the node rootfs resolves outside it: {real}")
        layer.add_file(path, real)
    for name in IPTABLES_NAMES:
        layer.add_symlink(f"/usr/sbin/{name}", "xtables-nft-multi")
    # Tools look in /sbin and /usr/lib64 on some paths; trixie is merged-/usr.
    for link, target in (
        ("/sbin", "usr/sbin"),
        ("/bin", "usr/bin"),
        ("/lib", "usr/lib"),
        ("/lib64", "usr/lib64"),
    ):
        layer.add_symlink(link, target)
    layer.dirs.update({"/tmp", "/run", "/var/run", "/etc"})
    return layer


def binary_layer(binary: Path, image_path: str) -> Layer:
    return Layer().add_file(image_path, binary)


def busybox_layer(busybox: Path) -> Layer:
    """A static busybox with a link per applet, as a shell for helper and init containers."""
    out = run([str(busybox), "--list-full"], step="busybox --list-full")
    layer = Layer().add_file("/bin/busybox", busybox)
    for applet in out.split():
        path = "/" + applet
        if path != "/bin/busybox":
            layer.add_symlink(path, "/bin/busybox")
    layer.dirs.update({"/tmp", "/etc", "/root"})
    return layer


def component_images(
    binaries: Mapping[str, Path], names: KubeadmImages, rootfs: Path, busybox: Path
) -> tuple[list[Image], Image]:
    """Every image preloaded into the node, and the busybox utility image on its own."""
    net = net_tools_layer(rootfs)
    box = Image(tags=list(versions.BUSYBOX_TAGS), layers=[busybox_layer(busybox)], cmd=["sh"])

    def single(ref: str, name: str, path: str, entry: list[str] | None = None) -> Image:
        layer = binary_layer(binaries[name], path)
        return Image(tags=[ref], layers=[layer], entrypoint=entry or [path])

    own = versions.OWN_REGISTRY
    images = [
        single(names.apiserver, "kube-apiserver", "/usr/local/bin/kube-apiserver"),
        single(
            names.controller_manager,
            "kube-controller-manager",
            "/usr/local/bin/kube-controller-manager",
        ),
        single(names.scheduler, "kube-scheduler", "/usr/local/bin/kube-scheduler"),
        single(names.etcd, "etcd", "/usr/local/bin/etcd"),
        single(names.coredns, "coredns", "/coredns"),
        single(names.pause, "pause", "/pause"),
        Image(
            tags=[names.proxy],
            layers=[net, binary_layer(binaries["kube-proxy"], "/usr/local/bin/kube-proxy")],
            entrypoint=["/usr/local/bin/kube-proxy"],
        ),
        Image(
            tags=[f"{own}/kube-router:{versions.KUBE_ROUTER_VERSION}"],
            layers=[net, binary_layer(binaries["kube-router"], "/usr/local/bin/kube-router")],
            entrypoint=["/usr/local/bin/kube-router"],
        ),
        single(
            f"{own}/local-path-provisioner:{versions.LOCAL_PATH_VERSION}",
            "local-path-provisioner",
            "/usr/local/bin/local-path-provisioner",
        ),
        box,
    ]
    return images, box
