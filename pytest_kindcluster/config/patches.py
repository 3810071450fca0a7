"""kind's kubeadmConfigPatches: merge patches and JSON 6902 patches on the kubeadm documents.

A merge patch applies to every document whose ``kind`` equals its own; if the patch names an
``apiVersion`` the group must match too, and the version unless the patch gives only a group.
Patches are applied in file order: the cluster's merge patches, then its JSON 6902 patches, then
the node's own of each.

Two kubeadm fields are merged the way kind merges them instead of being replaced wholesale:

- ``extraArgs`` / ``kubeletExtraArgs`` on a v1beta4 target (a list of ``name``/``value``) merge by
  name; a patch may still use the older ``{flag: value}`` map form, which is what most published
  kind configs contain, and a ``null`` value removes the flag;
- ``certSANs`` is a union, so a patch adds names without dropping the ones the cluster needs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from pytest_kindcluster.config.json6902 import Operation, apply_json6902, parse_json6902
from pytest_kindcluster.config.mergepatch import merge_patch
from pytest_kindcluster.config.model import PatchJSON6902
from pytest_kindcluster.config.validate import yaml_problem
from pytest_kindcluster.errors import PatchError

# The documents this plugin generates; a patch for any other kind would never apply.
KUBEADM_KINDS = (
    "ClusterConfiguration",
    "InitConfiguration",
    "JoinConfiguration",
    "KubeletConfiguration",
    "KubeProxyConfiguration",
)
_ARG_KEYS = ("extraArgs", "kubeletExtraArgs")


@dataclass(frozen=True)
class MergePatch:
    """One parsed merge-patch document and what it matches."""

    kind: str
    api_version: str
    body: dict[str, Any]


def parse_merge_patches(text: str) -> list[MergePatch]:
    """Split one ``kubeadmConfigPatches`` entry into its documents and check each."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise PatchError(f"not valid YAML: {yaml_problem(exc)}") from exc
    patches = []
    for doc in docs:
        if not isinstance(doc, dict):
            raise PatchError(f"a patch must be a mapping, got {type(doc).__name__}")
        kind = doc.get("kind")
        if not isinstance(kind, str) or not kind:
            raise PatchError("a patch must say which document it patches with `kind:`")
        if kind not in KUBEADM_KINDS:
            raise PatchError(
                f"kind {kind!r} matches no generated document (one of {', '.join(KUBEADM_KINDS)})"
            )
        api_version = doc.get("apiVersion", "")
        if not isinstance(api_version, str):
            raise PatchError(f"apiVersion must be a string, got {api_version!r}")
        patches.append(MergePatch(kind, api_version, doc))
    if not patches:
        raise PatchError("the patch is empty")
    return patches


def parse_json6902_patch(patch: PatchJSON6902) -> list[Operation]:
    """Check a ``kubeadmConfigPatchesJSON6902`` entry's target kind and operations."""
    if patch.kind not in KUBEADM_KINDS:
        raise PatchError(
            f"kind {patch.kind!r} matches no generated document (one of {', '.join(KUBEADM_KINDS)})"
        )
    return parse_json6902(patch.patch)


def _split(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def matches(document: dict[str, Any], kind: str, api_version: str) -> bool:
    """kind's matching rule: same kind; same group and, unless the patch omits it, version."""
    if document.get("kind") != kind:
        return False
    if not api_version:
        return True
    group, version = _split(str(document.get("apiVersion", "")))
    patch_group, patch_version = _split(api_version)
    return group == patch_group and (not patch_version or version == patch_version)


def _as_arg_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [{"name": str(k), "value": v} for k, v in value.items()]
    if isinstance(value, list):
        return [dict(item) for item in value if isinstance(item, dict) and "name" in item]
    return []


def _arg_text(value: Any) -> Any:
    # kubeadm's flag values are strings; YAML turns `v: 4` or `x: true` into numbers and bools.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


def _merge_args(target: Any, patch: Any) -> list[dict[str, Any]]:
    merged = _as_arg_list(target)
    for item in _as_arg_list(patch):
        name, value = item["name"], item.get("value")
        existing = [i for i, arg in enumerate(merged) if arg.get("name") == name]
        if value is None:
            merged = [arg for arg in merged if arg.get("name") != name]
        elif existing:
            merged[existing[0]]["value"] = _arg_text(value)
        else:
            merged.append({"name": name, "value": _arg_text(value)})
    return merged


def _merge_special(target: dict[str, Any], patch: dict[str, Any], v1beta4: bool) -> None:
    """Merge the fields kind treats specially into ``target`` and drop them from ``patch``."""
    for key in list(patch):
        value = patch[key]
        if key in _ARG_KEYS and v1beta4:
            target[key] = _merge_args(target.get(key), value)
            del patch[key]
        elif key == "certSANs" and isinstance(value, list):
            existing = target.get(key)
            current: list[Any] = existing if isinstance(existing, list) else []
            target[key] = current + [san for san in value if san not in current]
            del patch[key]
        elif isinstance(value, dict):
            child = target.setdefault(key, {})
            if isinstance(child, dict):
                _merge_special(child, value, v1beta4)


def apply_merge_patch(document: dict[str, Any], patch: MergePatch) -> dict[str, Any]:
    """One merge patch on one (matching) document; returns the patched copy."""
    target = copy.deepcopy(document)
    body = copy.deepcopy(patch.body)
    _merge_special(target, body, str(target.get("apiVersion", "")).endswith("/v1beta4"))
    result = merge_patch(target, body)
    assert isinstance(result, dict)  # a mapping patch on a mapping stays a mapping
    return result


def apply_kubeadm_patches(
    documents: Iterable[dict[str, Any]],
    merge_patches: Sequence[str] = (),
    json6902: Sequence[PatchJSON6902] = (),
) -> list[dict[str, Any]]:
    """Apply one level's patches (cluster or node) to the documents, in order."""
    parsed = [p for text in merge_patches for p in parse_merge_patches(text)]
    ops = [(p, parse_json6902_patch(p)) for p in json6902]
    result = []
    for document in documents:
        doc = copy.deepcopy(document)
        for patch in parsed:
            if matches(doc, patch.kind, patch.api_version):
                doc = apply_merge_patch(doc, patch)
        for target, operations in ops:
            if matches(doc, target.kind, target.api_version):
                try:
                    doc = apply_json6902(doc, operations)
                except PatchError as exc:
                    raise PatchError(f"JSON 6902 patch for {target.kind}: {exc}") from exc
                if not isinstance(doc, dict):
                    # `add` or `replace` at path "" can swap in any value; kubeadm needs a mapping.
                    raise PatchError(
                        f"JSON 6902 patch for {target.kind}: the document is no longer a mapping"
                    )
        result.append(doc)
    return result
