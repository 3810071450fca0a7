"""A private kubeconfig per cluster, and an ApiClient built from any kubeconfig.

Never merged into ``~/.kube/config``: one file per cluster means parallel runs never contend for
kubeconfig's lock file (kind issue 1425), and a test session cannot disturb the user's contexts.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s_client
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from pytest_kindcluster.contract import API_SERVER_PORT
from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.runtime.base import NodeDetails


def context_name(cluster: str) -> str:
    """kind's naming, so the file reads the same as one `kind get kubeconfig` would give."""
    return f"kind-{cluster}"


def host_server(details: NodeDetails) -> str:
    """``https://127.0.0.1:<port>``: where the control plane's apiserver is published."""
    binding = details.ports.get(f"{API_SERVER_PORT}/tcp")
    if binding is None:
        raise ConfigError(f"node {details.name} does not publish port {API_SERVER_PORT}")
    host, port = binding
    # A wildcard binding is reachable on loopback, which the serving cert names.
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"https://{host}:{port}"


def rewrite_kubeconfig(admin_conf: str, *, cluster: str, server: str) -> dict[str, Any]:
    """Turn the node's admin.conf into one for the host: renamed entries, host server URL."""
    doc = yaml.safe_load(admin_conf)
    if not isinstance(doc, dict):
        raise ConfigError("admin.conf from the control plane is not a kubeconfig mapping")
    counts = {key: len(doc.get(key) or []) for key in ("clusters", "users", "contexts")}
    if any(count != 1 for count in counts.values()):
        raise ConfigError(f"admin.conf should hold exactly one of each entry, found {counts}")
    name = context_name(cluster)
    entry_cluster, entry_user, entry_context = (
        doc["clusters"][0],
        doc["users"][0],
        doc["contexts"][0],
    )
    entry_cluster["name"] = name
    entry_cluster["cluster"]["server"] = server
    entry_user["name"] = name
    entry_context["name"] = name
    entry_context["context"]["cluster"] = name
    entry_context["context"]["user"] = name
    doc["current-context"] = name
    return doc


def write_private(path: Path, kubeconfig: dict[str, Any]) -> Path:
    """Write the kubeconfig with mode 0600 (in a 0700 directory if we create it), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".kubeconfig-")  # mkstemp: 0600
    try:
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(kubeconfig, handle, sort_keys=False)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    path.chmod(0o600)
    return path


def api_client(
    path: Path, *, context: str | None = None, temp_dir: Path | None = None
) -> k8s_client.ApiClient:
    """An ApiClient from the kubernetes library's own loader, for one file and context.

    The loader handles what kubeconfigs hold (tokens, token files, exec plugins, inline or
    file-path certificates, ``proxy-url``). It gets a Configuration of its own, so the library's
    process-wide default is left alone, and ``persist_config=False``, so it never writes back
    into the file. Inline certificates become files in ``temp_dir`` (default: ``certs/`` next to
    ``path``, which is only right for a file this package owns); the caller removes that
    directory when done.
    """
    directory = temp_dir or path.parent / "certs"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    configuration = k8s_client.Configuration()
    which = f", context {context!r}" if context else ""
    try:
        with _own_temp_files(), _loader_errors() as logged:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(path),
                context=context,
                client_configuration=configuration,
                persist_config=False,
                temp_file_path=str(directory),
            )
    except (ConfigException, OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot use kubeconfig {path}{which}: {exc}") from exc
    if logged:
        # A failed exec plugin is only logged by the loader, which then goes on without
        # credentials; every request would fail later with a puzzling 401 or 403.
        raise ConfigError(f"cannot use kubeconfig {path}{which}: {'; '.join(logged)}")
    _trim_token(configuration)
    if not configuration.proxy:
        configuration.proxy = _proxy_url(path, context)
    return k8s_client.ApiClient(configuration)


def _proxy_url(path: Path, context: str | None) -> str | None:
    """The chosen cluster's ``proxy-url``: the loader reads it only from kubernetes 37.0 on."""
    cluster = minify(path, check_context(path, context))["clusters"][0].get("cluster") or {}
    proxy = cluster.get("proxy-url")
    return str(proxy) if proxy else None


def _trim_token(configuration: Any) -> None:
    """Trim the bearer token as client-go does (``kubectl create token > file`` ends in a newline).

    The loader sends a ``tokenFile``'s content as it is, and a header value with a newline is
    refused by ``http.client``. The loader re-sets the token before each request (its refresh
    hook, typed as always None in the client's stubs), so the trim wraps that hook too.
    """
    refresh = configuration.refresh_api_key_hook

    def trimmed(conf: Any) -> None:
        if refresh is not None:
            refresh(conf)
        # The loader's hook puts itself back on the configuration each time it runs
        # (kube_config.KubeConfigLoader._set_config): stay in front of it for the next request.
        conf.refresh_api_key_hook = trimmed
        # Clients from 37.0 keep the token under "BearerToken", older ones under "authorization".
        for key in ("BearerToken", "authorization"):
            token = conf.api_key.get(key)
            if isinstance(token, str):
                conf.api_key[key] = token.strip()

    trimmed(configuration)
    configuration.refresh_api_key_hook = trimmed


@contextmanager
def _own_temp_files() -> Iterator[None]:
    """Keep the loader's cache of certificate files out of it, and ours out of the cache.

    The loader remembers each file it writes, by content, for the life of the process, and
    hands the same path to any later load of that content, whatever its ``temp_file_path``;
    older releases do so even after the file is deleted. A client would then depend on files
    in another cluster's private directory. So each load starts from an empty cache, and the
    cache is put back as it was: our files live and die with our directory.
    """
    cache: dict[str, str] = getattr(kube_config, "_temp_files", {})
    saved = dict(cache)
    cache.clear()
    try:
        yield
    finally:
        cache.clear()
        cache.update(saved)


@contextmanager
def _loader_errors() -> Iterator[list[str]]:
    """The errors the kubernetes loader logs instead of raising (its exec plugin's failures)."""
    logged: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if Path(record.pathname).name == "kube_config.py":
                logged.append(record.getMessage())

    handler = Collect(logging.ERROR)
    logging.getLogger().addHandler(handler)
    try:
        yield logged
    finally:
        logging.getLogger().removeHandler(handler)


def contexts(path: Path) -> tuple[list[str], str | None]:
    """The context names of a kubeconfig and its current-context."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"{path} is not a kubeconfig (not a YAML mapping)")
    names = [str(c.get("name")) for c in doc.get("contexts") or [] if isinstance(c, dict)]
    return names, doc.get("current-context") or None


def check_context(path: Path, context: str | None) -> str:
    """The context to use (``context``, else the current one); ConfigError naming the choices."""
    names, current = contexts(path)
    chosen = context or current
    if chosen is None or chosen not in names:
        what = f"no context {chosen!r}" if chosen else "no current-context"
        raise ConfigError(
            f"kubeconfig {path} has {what}; pick one with --kind-context (its contexts: "
            f"{', '.join(names) or 'none'})"
        )
    return chosen


# Entries that name files, resolved against the kubeconfig's directory as client-go does
# (clientcmd's ResolveLocalPaths); an exec command only when it is a path, not a PATH lookup.
_CLUSTER_FILES = ("certificate-authority",)
_USER_FILES = ("client-certificate", "client-key", "tokenFile")


def minify(path: Path, context: str) -> dict[str, Any]:
    """The one context of ``path`` as a kubeconfig of its own (``kubectl config view --minify``).

    Relative file references become absolute, so the copy works from anywhere; inline data
    stays inline. Names are kept as they are: any context or cluster name is valid here.
    """
    doc = yaml.safe_load(path.read_text()) or {}
    base = path.resolve().parent

    def entry(kind: str, name: str | None) -> dict[str, Any]:
        for item in doc.get(kind) or []:
            if item.get("name") == name:
                return copy.deepcopy(item)
        raise ConfigError(f"kubeconfig {path}: context {context!r} names {kind} {name!r}, absent")

    chosen = entry("contexts", context)
    ctx = chosen.get("context") or {}
    cluster = entry("clusters", ctx.get("cluster"))
    users = [entry("users", ctx["user"])] if ctx.get("user") else []
    for key in _CLUSTER_FILES:
        if cluster.get("cluster", {}).get(key):
            cluster["cluster"][key] = str(base / cluster["cluster"][key])
    for user in users:
        fields = user.get("user") or {}
        for key in _USER_FILES:
            if fields.get(key):
                fields[key] = str(base / fields[key])
        command = (fields.get("exec") or {}).get("command")
        if command and os.sep in command:
            fields["exec"]["command"] = str(base / command)
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": users,
        "contexts": [chosen],
        "current-context": context,
    }
