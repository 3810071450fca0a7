"""The patch machinery: JSON Patch, merge patch, kind's kubeadm merging, containerd TOML."""

from __future__ import annotations

import datetime
import tomllib
from pathlib import Path
from typing import Any

import pytest
from tomli_w import dumps

from pytest_kindcluster.config.containerd import patch_containerd_config
from pytest_kindcluster.config.json6902 import apply_json6902, parse_json6902, parse_pointer
from pytest_kindcluster.config.mergepatch import merge_patch
from pytest_kindcluster.config.model import PatchJSON6902
from pytest_kindcluster.config.patches import apply_kubeadm_patches, matches
from pytest_kindcluster.errors import PatchError
from pytest_kindcluster.provision.loadbalancer import render_config

NODE_CONTAINERD = (
    Path(__file__).parents[3]
    / "pytest_kindcluster/nodeimage/files/rootfs/etc/containerd/config.toml"
)

# -- RFC 6902 -------------------------------------------------------------------------------


def patch6902(doc: Any, text: str) -> Any:
    return apply_json6902(doc, parse_json6902(text))


@pytest.mark.parametrize(
    ("doc", "patch", "expected"),
    [
        ({"a": 1}, '[{"op": "add", "path": "/b", "value": 2}]', {"a": 1, "b": 2}),
        ({"a": [1, 3]}, '[{"op": "add", "path": "/a/1", "value": 2}]', {"a": [1, 2, 3]}),
        ({"a": [1]}, '[{"op": "add", "path": "/a/-", "value": 2}]', {"a": [1, 2]}),
        ({"a": 1, "b": 2}, '[{"op": "remove", "path": "/b"}]', {"a": 1}),
        ({"a": [1, 2]}, '[{"op": "remove", "path": "/a/0"}]', {"a": [2]}),
        ({"a": 1}, '[{"op": "replace", "path": "/a", "value": 9}]', {"a": 9}),
        ({"a": {"b": 1}}, '[{"op": "move", "from": "/a/b", "path": "/c"}]', {"a": {}, "c": 1}),
        ({"a": [1]}, '[{"op": "copy", "from": "/a", "path": "/b"}]', {"a": [1], "b": [1]}),
        ({"a/b": 1, "m~n": 2}, '[{"op": "remove", "path": "/a~1b"}]', {"m~n": 2}),
        ({"a": 1}, '[{"op": "test", "path": "/a", "value": 1}]', {"a": 1}),
        ({"a": 1}, "- op: add\n  path: /b\n  value: {c: d}\n", {"a": 1, "b": {"c": "d"}}),
        # kind reads a "~" that starts no escape as itself
        ({"a~b": 1, "c": 2}, '[{"op": "remove", "path": "/a~b"}]', {"c": 2}),
        ({"a": 1}, '[{"op": "replace", "path": "", "value": {"b": 2}}]', {"b": 2}),
    ],
)
def test_json6902_operations(doc: Any, patch: str, expected: Any) -> None:
    original = repr(doc)
    assert patch6902(doc, patch) == expected
    assert repr(doc) == original, "the input document must not change"


@pytest.mark.parametrize(
    ("doc", "patch", "error"),
    [
        ({"a": 1}, '[{"op": "remove", "path": "/b"}]', "no key 'b' to remove"),
        ({"a": 1}, '[{"op": "replace", "path": "/b", "value": 1}]', "no key 'b'"),
        ({"a": [1]}, '[{"op": "add", "path": "/a/5", "value": 1}]', "out of range"),
        ({"a": [1]}, '[{"op": "add", "path": "/a/01", "value": 1}]', "not an array index"),
        ({"a": 1}, '[{"op": "test", "path": "/a", "value": 2}]', "expected 2, found 1"),
        ({"a": {}}, '[{"op": "move", "from": "/a", "path": "/a/b"}]', "into a child"),
        ({"a": 1}, '[{"op": "add", "path": "/a/b", "value": 1}]', "not an object or array"),
        # values compare as JSON, as in kind: true is not 1
        ({"a": 1}, '[{"op": "test", "path": "/a", "value": true}]', "expected True, found 1"),
        ({"a": 1}, '[{"op": "move", "from": "", "path": ""}]', "the whole document"),
        ({"a": [1]}, '[{"op": "move", "from": "/a/0", "path": "/a/1"}]', r"range \(length 0"),
    ],
)
def test_json6902_failures_say_where(doc: Any, patch: str, error: str) -> None:
    with pytest.raises(PatchError, match=error):
        patch6902(doc, patch)


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        ('{"op": "add"}', "list of operations"),
        ('[{"op": "add", "path": "/a"}]', "needs a value"),
        ('[{"op": "copy", "path": "/a"}]', "needs a 'from' pointer"),
        ('[{"op": "add", "path": "a", "value": 1}]', "must be empty or start with '/'"),
        ('[{"op": "add", "path": "/a", "value": 1, "extra": 1}]', "unknown field"),
        ("[unclosed", "not valid YAML or JSON"),
    ],
)
def test_json6902_parse_errors(patch: str, error: str) -> None:
    with pytest.raises(PatchError, match=error):
        parse_json6902(patch)


def test_pointer_unescapes_in_rfc6901_order() -> None:
    assert parse_pointer("/~01") == ["~1"]
    assert parse_pointer("") == []


# -- RFC 7386 (examples from the RFC's appendix A) -------------------------------------------


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


# -- kubeadm documents, as kind patches them --------------------------------------------------


def cluster_doc(api: str = "kubeadm.k8s.io/v1beta4") -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": "ClusterConfiguration",
        "apiServer": {
            "certSANs": ["localhost", "127.0.0.1"],
            "extraArgs": [{"name": "runtime-config", "value": ""}],
        },
    }


def init_doc() -> dict[str, Any]:
    return {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "InitConfiguration",
        "nodeRegistration": {"kubeletExtraArgs": [{"name": "node-ip", "value": "10.0.0.2"}]},
    }


def test_map_form_extra_args_merge_by_name_into_v1beta4_lists() -> None:
    patch = (
        "kind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    node-labels: a=b\n"
    )
    [doc] = apply_kubeadm_patches([init_doc()], [patch])
    assert doc["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "10.0.0.2"},
        {"name": "node-labels", "value": "a=b"},
    ]


def test_extra_args_replace_by_name_delete_with_null_and_stringify() -> None:
    patch = (
        "kind: ClusterConfiguration\napiServer:\n  extraArgs:\n"
        "    runtime-config: null\n    v: 4\n    profiling: false\n"
    )
    [doc] = apply_kubeadm_patches([cluster_doc()], [patch])
    assert doc["apiServer"]["extraArgs"] == [
        {"name": "v", "value": "4"},
        {"name": "profiling", "value": "false"},
    ]


def test_v1beta3_extra_args_stay_a_map() -> None:
    target = cluster_doc("kubeadm.k8s.io/v1beta3")
    target["apiServer"]["extraArgs"] = {"a": "1"}
    patch = "kind: ClusterConfiguration\napiServer:\n  extraArgs:\n    b: '2'\n"
    [doc] = apply_kubeadm_patches([target], [patch])
    assert doc["apiServer"]["extraArgs"] == {"a": "1", "b": "2"}


def test_cert_sans_are_a_union() -> None:
    patch = "kind: ClusterConfiguration\napiServer:\n  certSANs: [localhost, my.host]\n"
    [doc] = apply_kubeadm_patches([cluster_doc()], [patch])
    assert doc["apiServer"]["certSANs"] == ["localhost", "127.0.0.1", "my.host"]


def test_a_patch_applies_only_to_its_kind() -> None:
    patch = "kind: InitConfiguration\nextra: 1\n"
    cluster, init = apply_kubeadm_patches([cluster_doc(), init_doc()], [patch])
    assert "extra" not in cluster
    assert init["extra"] == 1


@pytest.mark.parametrize(
    ("api_version", "applies"),
    [
        ("", True),
        ("kubeadm.k8s.io/v1beta4", True),
        ("kubeadm.k8s.io/", True),
        ("kubeadm.k8s.io/v1beta3", False),
        ("other.io/v1beta4", False),
        ("v1beta4", False),
    ],
)
def test_api_version_matching(api_version: str, applies: bool) -> None:
    assert matches(cluster_doc(), "ClusterConfiguration", api_version) is applies


def test_multi_document_patch_and_order_merge_then_json6902() -> None:
    merge = "kind: ClusterConfiguration\nx: 1\n---\nkind: InitConfiguration\ny: 2\n"
    json6902 = PatchJSON6902(
        kind="ClusterConfiguration",
        group="kubeadm.k8s.io",
        version="v1beta4",
        patch="- op: replace\n  path: /x\n  value: 3\n",
    )
    cluster, init = apply_kubeadm_patches([cluster_doc(), init_doc()], [merge], [json6902])
    assert (cluster["x"], init["y"]) == (3, 2)


def test_json6902_must_leave_a_kubeadm_document_a_mapping() -> None:
    swap = PatchJSON6902(kind="ClusterConfiguration", patch="- {op: replace, path: '', value: []}")
    with pytest.raises(PatchError, match="no longer a mapping"):
        apply_kubeadm_patches([cluster_doc()], [], [swap])


def test_json6902_failure_names_the_target() -> None:
    bad = PatchJSON6902(kind="ClusterConfiguration", patch="- op: remove\n  path: /nothing\n")
    with pytest.raises(PatchError, match=r"JSON 6902 patch for ClusterConfiguration: .*nothing"):
        apply_kubeadm_patches([cluster_doc()], [], [bad])


# -- TOML writer and containerd patches -------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"version": 2, "a": {"b": {"c": "d"}}},
        {"s": 'quote " back \\ tab \t nl \n ctrl \x01 uni é', "f": 1.5, "neg": -3},
        {"inf": float("inf"), "ninf": float("-inf"), "big": 10**18, "t": True, "e": False},
        {"arr": [1, [2, "x"], {"k": "v"}], "empty_arr": [], "empty": {}, "inline": [{}]},
        {"tables": [{"name": "a", "sub": {"x": 1}}, {"name": "b", "deep": [{"y": 2}]}]},
        {"dotted.key": 1, "with space": {"and/slash": "v"}, "": "empty key"},
        {"dt": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)},
        {"d": datetime.date(2026, 1, 2), "t": datetime.time(3, 4, 5)},
    ],
)
def test_toml_round_trip(data: dict[str, Any]) -> None:
    assert tomllib.loads(dumps(data)) == data


def test_toml_round_trips_the_node_images_containerd_config() -> None:
    original = tomllib.loads(NODE_CONTAINERD.read_text())
    assert tomllib.loads(dumps(original)) == original


def test_toml_rejects_null() -> None:
    with pytest.raises(TypeError, match="NoneType"):
        dumps({"a": None})


def test_containerd_patch_merges_a_registry_mirror() -> None:
    patch = (
        '[plugins."io.containerd.grpc.v1.cri".registry.mirrors."localhost:5000"]\n'
        'endpoint = ["http://kind-registry:5000"]\n'
    )
    out = tomllib.loads(patch_containerd_config(NODE_CONTAINERD.read_text(), [patch]))
    cri = out["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["registry"]["mirrors"]["localhost:5000"]["endpoint"] == ["http://kind-registry:5000"]
    # everything else survives the round trip
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert out["version"] == 2


def test_containerd_patch_for_another_version_is_skipped() -> None:
    patch = 'version = 3\n[plugins."io.containerd.cri.v1.runtime"]\nx = 1\n'
    out = tomllib.loads(patch_containerd_config(NODE_CONTAINERD.read_text(), [patch]))
    assert "io.containerd.cri.v1.runtime" not in out["plugins"]


def test_containerd_json6902_after_merge() -> None:
    merge = '[plugins."io.containerd.grpc.v1.cri"]\nsandbox_image = "x"\n'
    json6902 = (
        '- op: test\n  path: /plugins/io.containerd.grpc.v1.cri/sandbox_image\n  value: "x"\n'
    )
    out = patch_containerd_config(NODE_CONTAINERD.read_text(), [merge], [json6902])
    assert tomllib.loads(out)["plugins"]["io.containerd.grpc.v1.cri"]["sandbox_image"] == "x"


def test_containerd_json6902_value_keys_become_strings() -> None:
    json6902 = "- op: add\n  path: /ports\n  value: {5000: {name: registry}}\n"
    out = tomllib.loads(patch_containerd_config("version = 2\n", [], [json6902]))
    assert out["ports"] == {"5000": {"name": "registry"}}


def test_containerd_config_without_version_is_refused() -> None:
    with pytest.raises(PatchError, match="declares no `version`"):
        patch_containerd_config("[a]\nb = 1\n", ["[a]\nc = 2\n"])


def test_containerd_json6902_failure_names_the_entry() -> None:
    with pytest.raises(PatchError, match=r"containerdConfigPatchesJSON6902\[0\]"):
        patch_containerd_config("version = 2\n", [], ["- op: remove\n  path: /nothing\n"])


# -- load balancer config ---------------------------------------------------------------------


def test_loadbalancer_config_lists_each_control_plane_with_health_checks() -> None:
    cfg = render_config(["c-control-plane", "c-control-plane2"])
    assert "bind *:6443" in cfg
    assert "option httpchk GET /readyz" in cfg
    assert "  server c-control-plane c-control-plane:6443\n" in cfg
    assert "  server c-control-plane2 c-control-plane2:6443\n" in cfg
    assert "check check-ssl verify none" in cfg


def test_loadbalancer_rejects_names_that_would_break_the_config() -> None:
    with pytest.raises(ValueError, match="invalid backend name"):
        render_config(["a b"])
