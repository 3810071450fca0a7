"""``kind_settings`` and ``kind_runtime`` where no test can request them.

A conftest.py may override either fixture (README, "Fixtures"). Inside a test, pytest resolves
the override. Two places act outside any test: ``--kind-prune``, before the first test, and the
xdist controller, which never collects and deletes the run's shared clusters after the workers
are gone. Falling back to the defaults there would sweep or delete in the wrong engine, or with
the wrong retention. So they resolve the fixtures here the way pytest resolves a session-scoped
fixture: the override in the deepest conftest.py pytest has loaded, called with its own
arguments resolved the same way (``pytestconfig`` too), a ``yield`` fixture finalized when
pytest ends.

The xdist controller loads only the initial conftests: the rootdir's, and those of the test
paths and their ``test*`` subdirectories, where pytest also requires ``pytest_addoption``. An
override deeper than that is not seen there; the controller then notices that its engine is not
the one the cluster was made with, and leaves the cluster alone rather than guess (see
``coordination.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from pytest_kindcluster.errors import ConfigError
from pytest_kindcluster.runtime import connect_engine
from pytest_kindcluster.runtime.base import Engine
from pytest_kindcluster.settings import SETTINGS, Settings

_VALUES = pytest.StashKey[dict[str, Any]]()
_CLEANUP = pytest.StashKey[ExitStack]()


def _fixture_name(obj: Any) -> str | None:
    """The name a module attribute is a fixture under, or None if it is no fixture.

    pytest >= 8.4 wraps fixtures in ``FixtureFunctionDefinition``; earlier ones mark the
    function. Both keep the ``@pytest.fixture(name=...)`` marker.
    """
    marker = getattr(obj, "_fixture_function_marker", None) or getattr(
        obj, "_pytestfixturefunction", None
    )
    if marker is None:
        return None
    return getattr(marker, "name", None) or getattr(inspect.unwrap(obj), "__name__", None)


def _override(config: pytest.Config, name: str) -> Callable[..., Any] | None:
    """The plain function behind ``name`` in the deepest loaded conftest.py that defines it."""
    found: list[tuple[int, Callable[..., Any]]] = []
    manager = config.pluginmanager
    for plugin in manager.get_plugins():
        where = manager.get_name(plugin) or ""
        if not where.endswith("conftest.py"):
            continue
        for value in vars(plugin).values():
            if _fixture_name(value) == name:
                found.append((len(Path(where).parts), inspect.unwrap(value)))
    return max(found, key=lambda item: item[0])[1] if found else None


def _default(config: pytest.Config, name: str) -> Callable[[], Any] | None:
    defaults: dict[str, Callable[[], Any]] = {
        "pytestconfig": lambda: config,
        "kind_settings": lambda: config.stash[SETTINGS],
        "kind_runtime": connect_engine,
    }
    return defaults.get(name)


def _resolve(config: pytest.Config, name: str, chain: tuple[str, ...]) -> Any:
    values = config.stash.setdefault(_VALUES, {})
    if name in values:
        return values[name]
    if name in chain:
        raise ConfigError(f"fixture {name!r} depends on itself: {' -> '.join((*chain, name))}")
    function = _override(config, name) if name != "pytestconfig" else None
    if function is None:
        default = _default(config, name)
        if default is None:
            wanted = f" (wanted by {chain[-1]!r})" if chain else ""
            raise ConfigError(
                f"fixture {name!r}{wanted} is not available outside a test (on the xdist "
                "controller and for --kind-prune); give the override only pytestconfig and "
                "other session fixtures defined in a conftest.py"
            )
        values[name] = default()
        return values[name]
    arguments = {
        arg: _resolve(config, arg, (*chain, name)) for arg in inspect.signature(function).parameters
    }
    value = function(**arguments)
    if inspect.isgenerator(value):
        generator = value
        value = next(generator)
        if _CLEANUP not in config.stash:
            config.stash[_CLEANUP] = ExitStack()
            config.add_cleanup(config.stash[_CLEANUP].close)
        config.stash[_CLEANUP].callback(next, generator, None)
    values[name] = value
    return value


def session_settings(config: pytest.Config) -> Settings:
    """``kind_settings`` as the session's conftest overrides it."""
    value = _resolve(config, "kind_settings", ())
    if not isinstance(value, Settings):
        raise ConfigError(f"the kind_settings fixture returned {value!r}, not Settings")
    return value


def session_runtime(config: pytest.Config) -> Engine:
    """``kind_runtime`` as the session's conftest overrides it (Docker by default)."""
    value: Engine = _resolve(config, "kind_runtime", ())
    return value


def runtime_kind(runtime: object) -> str:
    """The runtime's class as ``module.Name``: what a marker file records and compares."""
    kind = type(runtime)
    return f"{kind.__module__}.{kind.__qualname__}"
