"""The cluster add-ons the node image ships: its CNI and its default StorageClass.

The manifests come from the image itself (/kind/manifests), processed as kind processes them,
so an image built for kind works here unchanged (docs/node-contract.md#add-ons-and-joins).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.provision.context import StepContext
from pytest_kindcluster.provision.kubeadm import kubectl_argv

CNI_MANIFEST = "/kind/manifests/default-cni.yaml"
STORAGE_MANIFEST = "/kind/manifests/default-storage.yaml"
TEMPLATE_MARKER = "would you kindly template this file"
PATCH_MARKER = "would you kindly patch this file"

# `{{ .Field }}` with Go's optional trim markers, which also eat the whitespace beside them.
_ACTION = re.compile(r"(\s*)\{\{(-?)\s*\.(\w+)\s*(-?)\}\}(\s*)")

# What kind falls back to when an (old) image ships no storage manifest.
_LEGACY_STORAGE = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
"""


def render_go_template(text: str, values: dict[str, str]) -> str:
    """Fill the ``{{ .Field }}`` actions kind's manifests use; anything else is an error.

    kind runs the manifest through Go's text/template with one field, ``.PodSubnet``; field
    substitution (with trim markers) is all of that a manifest can meaningfully use.
    """

    def fill(match: re.Match[str]) -> str:
        before, trim_left, field, trim_right, after = match.groups()
        if field not in values:
            raise ConfigError(f"the CNI manifest uses an unknown template field .{field}")
        return ("" if trim_left else before) + values[field] + ("" if trim_right else after)

    rendered = _ACTION.sub(fill, text)
    leftover = re.search(r"\{\{.*?\}\}", rendered)
    if leftover:
        raise ConfigError(f"the CNI manifest has an unsupported template action {leftover[0]!r}")
    return rendered


def add_control_plane_endpoint(text: str, endpoint: str) -> str:
    """kind's patch: give the CNI DaemonSet's first container CONTROL_PLANE_ENDPOINT."""
    docs: list[Any] = list(yaml.safe_load_all(text))
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "DaemonSet":
            container = doc["spec"]["template"]["spec"]["containers"][0]
            env = container.setdefault("env", [])
            env.append({"name": "CONTROL_PLANE_ENDPOINT", "value": endpoint})
    return yaml.safe_dump_all([d for d in docs if d is not None], sort_keys=False)


def render_cni_manifest(text: str, *, pod_subnet: str, control_plane_endpoint: str) -> str:
    """Apply kind's two opt-in markers to the image's CNI manifest."""
    if TEMPLATE_MARKER in text:
        text = render_go_template(text, {"PodSubnet": pod_subnet})
    if PATCH_MARKER in text:
        text = add_control_plane_endpoint(text, control_plane_endpoint)
    return text


class InstallCNI:
    """Install the image's CNI; nodes stay NotReady until it runs."""

    name = "cni"

    def __init__(self) -> None:
        self._manifest: str | None = None

    def prepare(self, ctx: StepContext) -> None:
        """Read and render the manifest (needs the node, not the apiserver)."""
        self._manifest = render_cni_manifest(
            ctx.control_plane.exec("cat", CNI_MANIFEST).stdout,
            pod_subnet=ctx.spec.cluster_config.networking.pod_subnet,
            control_plane_endpoint=ctx.spec.control_plane_endpoint,
        )

    def run(self, ctx: StepContext) -> None:
        """``kubectl create`` the rendered manifest inside the control plane."""
        if self._manifest is None:
            self.prepare(ctx)
        ctx.control_plane.exec(*kubectl_argv("create", "-f", "-"), stdin=self._manifest)


class InstallStorage:
    """Install the image's default StorageClass (local-path-provisioner in our image)."""

    name = "storage"

    def __init__(self) -> None:
        self._manifest: str | None = None

    def prepare(self, ctx: StepContext) -> None:
        """Read the storage manifest, or take kind's legacy StorageClass if there is none."""
        found = ctx.control_plane.exec("cat", STORAGE_MANIFEST, check=False)
        self._manifest = found.stdout if found.exit_code == 0 else _LEGACY_STORAGE

    def run(self, ctx: StepContext) -> None:
        """``kubectl apply`` the manifest inside the control plane."""
        if self._manifest is None:
            self.prepare(ctx)
        ctx.control_plane.exec(*kubectl_argv("apply", "-f", "-"), stdin=self._manifest)
