"""Install a CustomResourceDefinition and round-trip a custom resource through the API."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from pytest_kindcluster import KindCluster

GROUP, VERSION, PLURAL = "example.pytest-kindcluster.dev", "v1", "widgets"

CRD = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {PLURAL}.{GROUP}}}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: {PLURAL}, singular: widget, kind: Widget}}
  versions:
  - name: {VERSION}
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {{type: integer, minimum: 1}}
              colour: {{type: string}}
"""


def test_custom_resource_round_trip(
    kind_cluster: KindCluster, kind_client: Any, kind_namespace: str
) -> None:
    kind_cluster.apply(CRD)
    kind_cluster.kubectl(
        "wait", "--for=condition=Established", f"crd/{PLURAL}.{GROUP}", "--timeout=60s"
    )
    # Custom objects come back as plain dicts.
    api: Any = client.CustomObjectsApi(kind_client)
    widget = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": "blue-one"},
        "spec": {"size": 3, "colour": "blue"},
    }
    api.create_namespaced_custom_object(GROUP, VERSION, kind_namespace, PLURAL, widget)

    fetched = api.get_namespaced_custom_object(GROUP, VERSION, kind_namespace, PLURAL, "blue-one")
    assert fetched["spec"] == {"size": 3, "colour": "blue"}

    api.patch_namespaced_custom_object(
        GROUP, VERSION, kind_namespace, PLURAL, "blue-one", {"spec": {"size": 5}}
    )
    listed = api.list_namespaced_custom_object(GROUP, VERSION, kind_namespace, PLURAL)["items"]
    assert [(w["metadata"]["name"], w["spec"]["size"]) for w in listed] == [("blue-one", 5)]

    # The schema is enforced by the apiserver: size must be at least 1.
    invalid = {**widget, "metadata": {"name": "broken"}, "spec": {"size": 0}}
    with pytest.raises(client.ApiException) as refused:
        api.create_namespaced_custom_object(GROUP, VERSION, kind_namespace, PLURAL, invalid)
    assert refused.value.status == 422

    api.delete_namespaced_custom_object(GROUP, VERSION, kind_namespace, PLURAL, "blue-one")
    assert api.list_namespaced_custom_object(GROUP, VERSION, kind_namespace, PLURAL)["items"] == []
