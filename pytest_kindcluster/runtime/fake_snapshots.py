"""The in-memory engine's snapshot store (:meth:`FakeRuntime.snapshots`), for unit tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_kindcluster.runtime.base import NetworkInfo, SnapshotImage, SnapshotStore


class _FakeEngine(Protocol):
    """The parts of FakeRuntime a snapshot touches (its image, network and container tables)."""

    images: dict[str, str]
    networks: dict[str, dict[str, str]]
    containers: dict[str, Any]


@dataclass
class FakeSnapshots:
    """Images and networks kept in the fake runtime; every capture is recorded."""

    runtime: _FakeEngine
    stored: dict[str, SnapshotImage] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    captures: list[tuple[str, str, dict[str, bytes]]] = field(default_factory=list)
    in_use: set[str] = field(default_factory=set)
    moves: list[dict[str, str]] = field(default_factory=list)

    def stop_node(self, name: str, *, timeout: float) -> None:
        self.stopped.append(name)

    def capture_node(
        self,
        node: str,
        ref: str,
        *,
        base_image: str,
        labels: Mapping[str, str],
        extra_files: Mapping[str, bytes],
        moves: Mapping[str, str] | None = None,
    ) -> SnapshotImage:
        image = SnapshotImage(ref, f"sha256:snap-{len(self.stored)}", dict(labels), 1000)
        self.stored[ref] = image
        self.runtime.images[ref] = image.image_id
        self.captures.append((node, ref, dict(extra_files)))
        self.moves.append(dict(moves or {}))
        return image

    def images(self, label: str) -> list[SnapshotImage]:
        key, _, value = label.partition("=")
        return [
            image
            for ref, image in sorted(self.stored.items())
            if key in image.labels and (not value or image.labels[key] == value)
        ]

    def remove_image(self, ref: str) -> bool:
        if ref in self.in_use:
            return False
        self.stored.pop(ref, None)
        self.runtime.images.pop(ref, None)
        return True

    def create_network(self, name: str, labels: Mapping[str, str]) -> None:
        self.runtime.networks[name] = dict(labels)

    def networks(self, label: str) -> list[NetworkInfo]:
        key, _, value = label.partition("=")
        return [
            NetworkInfo(
                name,
                labels,
                sum(c.spec.network == name for c in self.runtime.containers.values()),
            )
            for name, labels in sorted(self.runtime.networks.items())
            if key in labels and (not value or labels[key] == value)
        ]


_: type[SnapshotStore] = FakeSnapshots
