"""The namespaces the ``kind_namespace`` fixture makes: create, delete, and list them by label.

These are the only calls it needs, so a user who may only create and delete namespaces (as on
many shared clusters) can use it. The Kubernetes client's errors are translated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException

from pytest_kindcluster.errors import KindClusterError


@dataclass(frozen=True)
class NamespaceInfo:
    """What the sweep of leftovers needs to know about one namespace."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    created: datetime | None
    terminating: bool


def create(
    api: k8s_client.ApiClient,
    name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
) -> None:
    """Create the namespace ``name``; KindClusterError with the apiserver's reason if refused."""
    body = k8s_client.V1Namespace(
        metadata=k8s_client.V1ObjectMeta(
            name=name, labels=dict(labels), annotations=dict(annotations)
        )
    )
    try:
        k8s_client.CoreV1Api(api).create_namespace(body)
    except ApiException as exc:
        raise KindClusterError(
            f"cannot create namespace {name!r}: HTTP {exc.status} {exc.reason}"
        ) from exc


def delete(api: k8s_client.ApiClient, name: str) -> bool:
    """Delete ``name`` (its contents in the background); False if it was already gone."""
    try:
        k8s_client.CoreV1Api(api).delete_namespace(name, propagation_policy="Background")
    except ApiException as exc:
        if exc.status == 404:  # the test deleted it itself
            return False
        raise KindClusterError(
            f"cannot delete namespace {name!r}: HTTP {exc.status} {exc.reason}"
        ) from exc
    return True


def list_labelled(api: k8s_client.ApiClient, selector: str) -> list[NamespaceInfo] | None:
    """Namespaces matching the label ``selector``; None when the credentials may not list them."""
    try:
        items = k8s_client.CoreV1Api(api).list_namespace(label_selector=selector).items
    except ApiException as exc:
        if exc.status == 403:
            return None
        raise KindClusterError(
            f"cannot list namespaces ({selector}): HTTP {exc.status} {exc.reason}"
        ) from exc
    return [
        NamespaceInfo(
            name=str(ns.metadata.name),
            labels=ns.metadata.labels or {},
            annotations=ns.metadata.annotations or {},
            created=ns.metadata.creation_timestamp,
            terminating=bool(ns.status and ns.status.phase == "Terminating"),
        )
        for ns in items
        if ns.metadata is not None
    ]
