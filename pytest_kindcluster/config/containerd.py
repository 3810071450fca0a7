"""containerdConfigPatches: merge TOML patches (and JSON 6902 patches) into containerd's config.

As kind does it: the node's ``/etc/containerd/config.toml`` is read as data, each TOML patch is
merged in (RFC 7386 semantics on the table tree) unless it declares a different config
``version``, the JSON 6902 patches follow, and the result is written back as TOML.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from typing import Any

import tomli_w

from pytest_kindcluster.config.json6902 import apply_json6902, parse_json6902
from pytest_kindcluster.config.mergepatch import merge_patch
from pytest_kindcluster.errors import PatchError

CONFIG_PATH = "/etc/containerd/config.toml"


def parse_toml_patch(text: str) -> dict[str, Any]:
    """One containerdConfigPatches entry as data; a syntax error names the line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PatchError(f"not valid TOML: {exc}") from exc


def patch_containerd_config(
    config_text: str, patches: Sequence[str] = (), patches6902: Sequence[str] = ()
) -> str:
    """The node's containerd config with every patch applied, as TOML text."""
    config: Any = parse_toml_patch(config_text)
    version = config.get("version", 0)
    if not version:
        # Patches are written against a config version; without one we cannot tell which.
        raise PatchError(f"{CONFIG_PATH} declares no `version`; cannot apply patches to it")
    for text in patches:
        patch = parse_toml_patch(text)
        declared = patch.get("version", 0)
        if declared and declared != version:
            continue  # written for another config version: kind skips it too
        config = merge_patch(config, patch)
    for index, text in enumerate(patches6902):
        try:
            config = apply_json6902(config, parse_json6902(text))
        except PatchError as exc:
            raise PatchError(f"containerdConfigPatchesJSON6902[{index}]: {exc}") from exc
    if not isinstance(config, dict):
        raise PatchError("the patches replaced containerd's config with a non-table value")
    try:
        return tomli_w.dumps(_string_keys(config))
    except (TypeError, ValueError) as exc:
        raise PatchError(f"the patched containerd config cannot be written as TOML: {exc}") from exc


def _string_keys(value: Any) -> Any:
    # A YAML JSON 6902 value can bring non-string keys (`value: {5000: x}`) that TOML cannot
    # hold; as JSON, which is what kind reads, they would have been strings.
    if isinstance(value, dict):
        return {str(k): _string_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_string_keys(v) for v in value]
    return value
