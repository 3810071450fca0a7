"""The plugin's settings, each with the place it came from: command line > ini file > default.

Options are declared once in :data:`OPTIONS`; that table drives ``addoption``, ``addini``, the
parsing, and the report header. Environment variables are deliberately not a source: the
ecosystem's own (``DOCKER_HOST``) are honoured by the Docker client, and ``PYTEST_ADDOPTS``
covers CI needs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_kindcluster.config import ClusterConfig, load_config
from pytest_kindcluster.config.validate import validate_cluster_name, validate_timeout
from pytest_kindcluster.contract import DEFAULT_NODE_IMAGE, RETAIN_CHOICES, Retain
from pytest_kindcluster.errors import ConfigError

REUSE_DEFAULT_NAME = "pytest-kindcluster"


def _workers(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _timeout(text: str) -> float:
    return validate_timeout(float(text))


def _retain(text: str) -> Retain:
    if text not in RETAIN_CHOICES:
        raise ValueError(f"must be one of {', '.join(RETAIN_CHOICES)}")
    return text  # narrowed by the membership test above


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


@dataclass(frozen=True)
class Option:
    """One setting: its command-line flag, its ini key, its default, and how to parse it."""

    field: str
    help: str
    default: str | None
    parse: Callable[[str], Any]
    metavar: str = ""

    @property
    def flag(self) -> str:
        """``--kind-<field>`` with dashes."""
        return "--kind-" + self.field.replace("_", "-")

    @property
    def ini(self) -> str:
        """``kind_<field>``: the ini twin of the flag."""
        return "kind_" + self.field


OPTIONS: tuple[Option, ...] = (
    Option("image", "node image for every node", DEFAULT_NODE_IMAGE, str, "REF"),
    Option("name", "cluster name (default: pytest-<run id>)", None, validate_cluster_name, "NAME"),
    Option("workers", "number of worker nodes besides the control plane", "0", _workers, "N"),
    Option(
        "retain",
        "keep the cluster after the session: never|on-failure|always",
        "never",
        _retain,
        "WHEN",
    ),
    Option(
        "reuse", "reuse a retained cluster of that name after checking it is ready", "false", _flag
    ),
    Option("timeout", "seconds the cluster has to become ready", "300", _timeout, "SECONDS"),
    Option("logs_dir", "where cluster logs are exported on failure", None, Path, "DIR"),
    Option(
        "config", "kind cluster YAML (kind.x-k8s.io/v1alpha4) for the cluster", None, Path, "PATH"
    ),
    Option(
        "kubeconfig",
        "use the existing cluster of this kubeconfig: nothing is created or deleted",
        None,
        Path,
        "PATH",
    ),
    Option(
        "context",
        "the --kind-kubeconfig context to use (default: its current-context)",
        None,
        str,
        "NAME",
    ),
    Option(
        "snapshot",
        "boot the cluster from a local snapshot of a ready cluster with the same inputs "
        "(made on first use)",
        "false",
        _flag,
    ),
)
# Options that name files: relative to where pytest was invoked (CLI) or to the rootdir (ini).
_PATH_OPTIONS = ("logs_dir", "config", "kubeconfig")


def add_options(parser: pytest.Parser) -> None:
    """Register every option as ``--kind-*`` and its ``kind_*`` ini twin."""
    group = parser.getgroup("kindcluster", "kind clusters (pytest-kindcluster)")
    for option in OPTIONS:
        dest = option.ini
        if option.parse is _flag:
            group.addoption(
                option.flag, action="store_true", default=None, dest=dest, help=option.help
            )
        else:
            group.addoption(
                option.flag, metavar=option.metavar, default=None, dest=dest, help=option.help
            )
        parser.addini(option.ini, f"{option.help} (twin of {option.flag})", default="")


@dataclass(frozen=True)
class Settings:
    """Resolved settings; ``sources`` says where each came from (cli, ini or default)."""

    image: str
    name: str
    workers: int
    retain: Retain
    reuse: bool
    timeout: float
    logs_dir: Path | None
    sources: Mapping[str, str]
    config: Path | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    #: the loaded --kind-config file (validated before any container exists)
    cluster_config: ClusterConfig | None = None
    snapshot: bool = False

    @classmethod
    def from_config(cls, config: pytest.Config, *, run_id: str | None = None) -> Settings:
        """Resolve every option; all problems are reported together as one ConfigError."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        problems: list[str] = []
        for option in OPTIONS:
            raw, source = _raw_value(config, option)
            sources[option.field] = source
            if raw is None:
                values[option.field] = None
                continue
            try:
                value = option.parse(raw) if isinstance(raw, str) else raw
            except (ValueError, ConfigError) as exc:
                where = option.flag if source == "cli" else f"ini {option.ini}"
                problems.append(f"{where}={raw!r}: {exc}")
                continue
            if option.field in _PATH_OPTIONS:
                base = config.invocation_params.dir if source == "cli" else config.rootpath
                value = base / value
            values[option.field] = value
        problems += _check_cluster_options(values, sources)
        if problems:
            raise ConfigError("invalid pytest-kindcluster settings:\n  " + "\n  ".join(problems))
        if values["config"] is not None:
            values["cluster_config"] = load_config(values["config"])
            if values["snapshot"]:
                # Only snapshot sessions load the snapshot module.
                from pytest_kindcluster.cluster.snapshot import (  # noqa: PLC0415
                    refuse_high_availability,
                )

                refuse_high_availability(values["cluster_config"])
            # kind's own rule: the file's name unless one is given explicitly.
            values["name"] = values["name"] or values["cluster_config"].name
        if values["name"] is None:
            # A reused cluster needs a name that is the same next time; a fresh one must not
            # collide with a parallel run's.
            values["name"] = (
                REUSE_DEFAULT_NAME
                if values["reuse"]
                else f"pytest-{run_id or secrets.token_hex(4)}"
            )
        return cls(sources=sources, **values)

    def export_logs_after(self, failed: bool) -> bool:
        """Export logs at the end whenever a test on the cluster failed.

        The evidence is gone once the cluster is deleted, and a CI failure is often not
        reproducible; a few seconds of export is cheap next to a rerun. The terminal summary
        says where they went.
        """
        return failed

    def header_lines(self) -> list[str]:
        """The report header: each setting with its source."""
        shown = {
            "image": self.image,
            "name": self.name,
            "workers": self.workers,
            "retain": self.retain,
            "reuse": self.reuse,
            "timeout": f"{self.timeout:g}s",
            "logs_dir": self.logs_dir or "a temporary directory",
        }
        if self.config:
            shown["config"] = self.config
        if self.kubeconfig:
            shown["kubeconfig"] = f"{self.kubeconfig} (existing cluster)"
            shown["context"] = self.context or "its current-context"
        if self.snapshot:
            shown["snapshot"] = True
        parts = [f"{field}={value} ({self.sources[field]})" for field, value in shown.items()]
        return ["kindcluster: " + ", ".join(parts[:2]), "kindcluster: " + ", ".join(parts[2:])]


def _check_cluster_options(values: Mapping[str, Any], sources: Mapping[str, str]) -> list[str]:
    """Combinations that cannot mean anything: say so instead of silently preferring one."""
    problems = []
    if (
        values.get("config") is not None
        and values.get("workers")
        and sources["workers"] != "default"
    ):
        problems.append(
            "--kind-workers and --kind-config both describe the nodes; put the workers in the "
            "config file (nodes: - role: worker)"
        )
    if values.get("kubeconfig") is not None:
        path = values["kubeconfig"]
        if not path.is_file():
            problems.append(f"--kind-kubeconfig {path}: no such file")
        if values.get("config") is not None:
            problems.append(
                "--kind-kubeconfig uses an existing cluster; --kind-config cannot apply"
            )
        if values.get("snapshot"):
            problems.append(
                "--kind-kubeconfig uses an existing cluster; --kind-snapshot cannot apply"
            )
        if path.is_file():
            # Only sessions on an existing cluster pay for the Kubernetes client's import.
            from pytest_kindcluster.kube.kubeconfig import check_context  # noqa: PLC0415

            try:
                check_context(path, values.get("context"))
            except ConfigError as exc:
                problems.append(f"--kind-kubeconfig: {exc}")
    elif values.get("context") is not None:
        problems.append("--kind-context picks a context of --kind-kubeconfig, which is not set")
    return problems


def _raw_value(config: pytest.Config, option: Option) -> tuple[Any, str]:
    cli = config.getoption(option.ini)
    if cli is not None:
        return (cli if isinstance(cli, bool) else str(cli)), "cli"
    ini = config.getini(option.ini)
    if isinstance(ini, str) and ini.strip():
        return ini.strip(), "ini"
    return option.default, "default"


# Session state lives in config.stash (never in module globals), keyed here so hooks and
# fixtures share it without importing each other.
SETTINGS = pytest.StashKey[Settings]()
FAILED_KIND_TESTS = pytest.StashKey[int]()
