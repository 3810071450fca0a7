"""Rendering the image's CNI manifest the way kind does."""

from __future__ import annotations

import pytest
import yaml

from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.provision.addons import render_cni_manifest, render_go_template

ENDPOINT = "demo-control-plane:6443"


def test_template_marker_fills_pod_subnet() -> None:
    text = "# would you kindly template this file\ncidr: {{ .PodSubnet }}\nalso: {{.PodSubnet}}\n"
    out = render_cni_manifest(text, pod_subnet="10.244.0.0/16", control_plane_endpoint=ENDPOINT)
    assert "cidr: 10.244.0.0/16\n" in out
    assert "also: 10.244.0.0/16\n" in out
    assert "{{" not in out


def test_without_the_marker_the_manifest_is_left_alone() -> None:
    text = "value: {{ .PodSubnet }}\n"
    assert render_cni_manifest(text, pod_subnet="x", control_plane_endpoint=ENDPOINT) == text


def test_trim_markers_eat_adjacent_whitespace_as_in_go() -> None:
    assert render_go_template("a:  {{- .X -}}  \nb", {"X": "1"}) == "a:1b"
    assert render_go_template("a: {{ .X }} b", {"X": "1"}) == "a: 1 b"


@pytest.mark.parametrize("text", ["{{ .Nope }}", "{{ if .PodSubnet }}x{{ end }}"])
def test_anything_but_known_fields_is_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        render_go_template(text, {"PodSubnet": "10.244.0.0/16"})


def test_patch_marker_adds_control_plane_endpoint_to_the_daemonset() -> None:
    text = """\
# would you kindly patch this file
apiVersion: v1
kind: ServiceAccount
metadata: {name: kindnet}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kindnet}
spec:
  template:
    spec:
      containers:
      - name: kindnet-cni
        env:
        - {name: POD_SUBNET, value: "10.244.0.0/16"}
      - name: sidecar
"""
    out = render_cni_manifest(text, pod_subnet="x", control_plane_endpoint=ENDPOINT)
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["ServiceAccount", "DaemonSet"]
    containers = docs[1]["spec"]["template"]["spec"]["containers"]
    assert containers[0]["env"][-1] == {"name": "CONTROL_PLANE_ENDPOINT", "value": ENDPOINT}
    assert "env" not in containers[1]
