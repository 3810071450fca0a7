"""The dependency floors pyproject.toml declares are the versions tox's "lowest" env installs.

Whether those versions work is for that environment to show (`make floors`, run by CI); this
keeps the declaration and the tested set from drifting apart.
"""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
CONSTRAINTS = ROOT / "tests" / "constraints-lowest.txt"


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}


def pinned() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_dependency_is_pinned_at_its_declared_floor() -> None:
    requirements, pins = declared(), pinned()
    assert set(pins) == set(requirements)
    for name, requirement in requirements.items():
        floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        assert floors == [pins[name]], f"{name}: declared {requirement.specifier}, pinned {pins}"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is excluded"


def test_known_broken_floors_stay_excluded() -> None:
    # docker 7.0.0 cannot talk to a unix socket with requests >= 2.32; kubernetes 36.0.0 sends
    # no token from a kubeconfig.
    requirements = declared()
    assert not requirements["docker"].specifier.contains("7.0.0")
    assert not requirements["kubernetes"].specifier.contains("36.0.0")
    assert requirements["kubernetes"].specifier.contains("36.0.1")


def test_tox_lowest_installs_the_pins_and_both_ends_run_a_real_session() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    lowest = tox["testenv:lowest"]
    assert "PIP_CONSTRAINT = {toxinidir}/tests/constraints-lowest.txt" in lowest["set_env"]
    session = tox["floors"]["session"]
    path, _, test = session.partition("::")
    assert test in (ROOT / path).read_text(), f"{session} does not exist"
    assert "-m integration" in lowest["commands"]
    assert "{[floors]session}" in lowest["commands"]
    assert tox["testenv:newest"]["commands"] == "{[testenv:lowest]commands}"
