"""Pinned versions of everything the node image is built from.

Bumping a pin here (and the matching wrapper module under ``gomod/``) is the whole upgrade: every
cache key derives from these values and the wrapper modules' go.mod/go.sum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KUBERNETES = "v1.37.2"
# The staging modules (k8s.io/api, ...) are published as v0.<minor>.<patch> twins of the release.
KUBERNETES_STAGING = "v0." + KUBERNETES.removeprefix("v1.")
DEBIAN_SUITE = "trixie"
BUSYBOX_TAGS = ("docker.io/library/busybox:latest", "docker.io/library/busybox:1.36")
# Our own builds of upstream components are named under our namespace, so nobody mistakes them
# for the upstream publishers' images; kubeadm's images keep the names kubeadm asks for.
OWN_REGISTRY = "docker.io/pytest-kindcluster"
LOCAL_PATH_VERSION = "v0.0.30"
KUBE_ROUTER_VERSION = "v2.1.0"


@dataclass(frozen=True)
class GoComponent:
    """One Go wrapper module under ``gomod/`` and the binaries it yields.

    ``packages`` maps an import path to the file name the binary gets in the image.
    """

    module: str
    version: str
    packages: dict[str, str]
    ldflags: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    # runc's nsenter is C, so it needs cgo; it is linked statically against libseccomp.a.
    cgo: bool = False
    extldflags: str = ""
    env: dict[str, str] = field(default_factory=dict)


def _k8s_version_flags() -> tuple[str, ...]:
    minor = KUBERNETES.split(".")[1]
    flags: list[str] = []
    # kubeadm picks the control-plane image tags from its own version, so it must be stamped.
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={KUBERNETES}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return tuple(flags)


K8S_COMMANDS = (
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
)

COMPONENTS: tuple[GoComponent, ...] = (
    GoComponent(
        module="kubernetes",
        version=KUBERNETES,
        packages={f"k8s.io/kubernetes/cmd/{c}": c for c in K8S_COMMANDS},
        ldflags=_k8s_version_flags(),
    ),
    GoComponent(
        module="etcd",
        version="v3.7.0",
        packages={"go.etcd.io/etcd/server/v3": "etcd"},
    ),
    GoComponent(
        module="coredns",
        version="v1.14.6",
        packages={"github.com/coredns/coredns": "coredns"},
    ),
    GoComponent(
        module="cri-tools",
        version="v1.37.0",
        packages={"sigs.k8s.io/cri-tools/cmd/crictl": "crictl"},
        ldflags=("-X sigs.k8s.io/cri-tools/pkg/version.Version=v1.37.0",),
    ),
    GoComponent(
        module="containerd",
        version="v2.2.9",
        packages={
            "github.com/containerd/containerd/v2/cmd/containerd": "containerd",
            "github.com/containerd/containerd/v2/cmd/ctr": "ctr",
            "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2": (
                "containerd-shim-runc-v2"
            ),
        },
        ldflags=("-X github.com/containerd/containerd/v2/version.Version=v2.2.9",),
        # btrfs support needs cgo and headers; nodes use overlayfs.
        tags=("no_btrfs", "urfave_cli_no_docs"),
    ),
    GoComponent(
        module="runc",
        version="v1.3.6",
        packages={"github.com/opencontainers/runc": "runc"},
        # runc embeds its VERSION file, so it needs no version stamp.
        tags=("seccomp", "urfave_cli_no_docs", "netgo", "osusergo"),
        cgo=True,
        extldflags="-static",
    ),
    GoComponent(
        module="kube-router",
        version=KUBE_ROUTER_VERSION,
        packages={"github.com/cloudnativelabs/kube-router/v2/cmd/kube-router": "kube-router"},
        ldflags=(
            "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version="
            + KUBE_ROUTER_VERSION,
        ),
    ),
    GoComponent(
        module="local-path-provisioner",
        version=LOCAL_PATH_VERSION,
        packages={"github.com/rancher/local-path-provisioner": "local-path-provisioner"},
        ldflags=(f"-X main.VERSION={LOCAL_PATH_VERSION}",),
    ),
)

# Every binary the node image needs, whichever way it was obtained (compiled or --bin-dir).
REQUIRED_BINARIES: tuple[str, ...] = tuple(
    name for component in COMPONENTS for name in component.packages.values()
)
