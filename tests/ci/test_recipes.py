"""The pipeline recipes users copy (examples/ci/): linted, and their shell steps run here.

Every shell step of both files is extracted and classified. Installs from a package index are
the only ones not run; a new step fails the test until it is classified. The node-image step
runs for real against the Docker engine, with a tiny image standing in for the node image (and
a stub standing in for the 30-minute build); the test step runs pytest with the recipe's exact
command line against the in-memory runtime, and the artifact paths the recipes upload must be
what that run produced.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from tests.support import FAKE_ENGINE_CONFTEST

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "examples" / "ci"
GITHUB = RECIPES / "github-actions.yml"
GITLAB = RECIPES / "gitlab-ci.yml"
ACTIONLINT_VERSION = "v1.7.12"  # scripts/setup.sh installs this one


@dataclass(frozen=True)
class Recipe:
    """One pipeline file's shell steps and the environment it gives them."""

    name: str
    commands: list[str]
    env: dict[str, str]
    python: str  # the interpreter the steps call, relative to the project
    logs_artifact: str
    junit_artifact: str


def github(project: Path) -> Recipe:
    flow = yaml.safe_load(GITHUB.read_text())
    (job,) = flow["jobs"].values()
    env = {
        k: str(v).replace("${{ github.workspace }}", str(project)) for k, v in flow["env"].items()
    }
    uploads = {
        s["with"]["name"]: s for s in job["steps"] if s.get("uses", "").startswith("actions/upload")
    }
    assert uploads["kind-logs"]["if"] == "failure()"
    assert uploads["junit"]["if"] == "always()"
    return Recipe(
        "github",
        [s["run"].strip() for s in job["steps"] if "run" in s],
        env,
        "python",
        uploads["kind-logs"]["with"]["path"],
        uploads["junit"]["with"]["path"],
    )


def gitlab(project: Path) -> Recipe:
    pipeline = yaml.safe_load(GITLAB.read_text())
    job = pipeline["kind-tests"]
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    (logs,) = artifacts["paths"]
    return Recipe(
        "gitlab",
        [*job["before_script"], *job["script"]],
        {k: str(v) for k, v in pipeline["variables"].items()},
        ".venv/bin/python",
        logs,
        artifacts["reports"]["junit"],
    )


RECIPE_LOADERS = {"github": github, "gitlab": gitlab}


def classify(command: str) -> str:
    """What a step does; only installs from a package index are not run here."""
    if "pip install" in command or "apt-get" in command or command.startswith("python3 -m venv"):
        return "install"
    if "ci/node-image.sh" in command:
        return "node-image"
    if " -m pytest " in command:
        return "tests"
    raise AssertionError(f"unclassified step {command!r}: decide how this test runs it")


def steps(recipe: Recipe, kind: str) -> list[str]:
    found = [c for c in recipe.commands if classify(c) == kind]
    assert found, f"{recipe.name}: no {kind} step"
    return found


BUILD_STUB = """#!/usr/bin/env bash
# Stands in for the interpreter: `-m pytest_kindcluster node-image build --tag REF` "builds"
# by tagging a tiny image; anything else goes to the real interpreter.
if [ "$1 $2 $3 $4 $5" = "-m pytest_kindcluster node-image build --tag" ]; then
    echo "$6" >> "{calls}"
    exec docker tag "{source}" "$6"
fi
exec "{python}" "$@"
"""


def make_project(tmp: Path, recipe: Recipe, source_image: str) -> Path:
    """A user's repository after copying the recipe: ci/node-image.sh, and the interpreter."""
    (tmp / "ci").mkdir()
    shutil.copy2(RECIPES / "node-image.sh", tmp / "ci" / "node-image.sh")
    interpreter = tmp / "bin" / recipe.python if recipe.python == "python" else tmp / recipe.python
    interpreter.parent.mkdir(parents=True)
    interpreter.write_text(
        BUILD_STUB.format(calls=tmp / "build-calls", source=source_image, python=sys.executable)
    )
    interpreter.chmod(0o755)
    return tmp


def run_step(command: str, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "PATH": f"{project / 'bin'}:{os.environ['PATH']}"}
    for leak in ("PYTEST_ADDOPTS", "PYTHONPATH"):
        full_env.pop(leak, None)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


# -- linting -------------------------------------------------------------------------------


def find_tool(name: str, hint: str) -> str:
    gobin = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True, check=False)
    candidates = [shutil.which(name), str(Path(gobin.stdout.strip()) / "bin" / name)]
    found = next((c for c in candidates if c and Path(c).is_file()), None)
    if found is None:
        pytest.fail(f"{name} is missing: {hint} (scripts/setup.sh does it)")
    return found


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    tool = find_tool(
        "actionlint", f"go install github.com/rhysd/actionlint/cmd/actionlint@{ACTIONLINT_VERSION}"
    )
    # shellcheck on PATH makes actionlint check every run: block too.
    assert shutil.which("shellcheck"), "shellcheck is missing: apt-get install shellcheck"
    return subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)


def test_github_workflow_passes_actionlint_and_shellcheck() -> None:
    result = actionlint(GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr
    check = subprocess.run(
        ["shellcheck", str(RECIPES / "node-image.sh")], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout


def test_actionlint_catches_a_broken_copy(tmp_path: Path) -> None:
    # The lint above is live: a misspelt step id and an unquoted variable are reported.
    broken = GITHUB.read_text().replace("steps.node-image.outputs", "steps.node-img.outputs")
    broken = broken.replace('"$KIND_IMAGE" "$NODE_IMAGE_CACHE"', "$KIND_IMAGE $NODE_IMAGE_CACHE")
    (tmp_path / "broken.yml").write_text(broken)
    result = actionlint(tmp_path / "broken.yml")
    assert result.returncode == 1
    assert 'property "node-img" is not defined' in result.stdout
    assert "SC2086" in result.stdout  # shellcheck, run by actionlint on the run: block


def test_gitlab_pipeline_has_the_expected_shape() -> None:
    pipeline = yaml.safe_load(GITLAB.read_text())
    assert set(pipeline) == {"variables", "kind-tests"}
    job = pipeline["kind-tests"]
    assert set(job) >= {"cache", "before_script", "script", "artifacts"}
    # The image archive survives a failing job, and lives where GitLab can cache it.
    assert job["cache"]["when"] == "always"
    cache_dir = pipeline["variables"]["NODE_IMAGE_CACHE"]
    assert job["cache"]["paths"] == [f"{cache_dir}/"]
    assert "/" not in job["cache"]["key"]  # GitLab refuses cache keys with "/"
    (test_step,) = job["script"]
    assert "--kind-logs-dir kind-logs" in test_step
    assert "--junitxml junit.xml" in test_step


def test_every_shell_step_is_known(tmp_path: Path) -> None:
    for load in RECIPE_LOADERS.values():
        recipe = load(tmp_path)
        kinds = {classify(c) for c in recipe.commands}
        assert kinds == {"install", "node-image", "tests"}, recipe.name


# -- the test step: pytest with the recipe's command line ----------------------------------


@pytest.mark.parametrize("name", sorted(RECIPE_LOADERS))
@pytest.mark.parametrize("fails", [True, False], ids=["failing", "passing"])
def test_test_step_writes_what_the_recipe_uploads(name: str, fails: bool, tmp_path: Path) -> None:
    recipe = RECIPE_LOADERS[name](tmp_path)
    project = make_project(tmp_path, recipe, source_image="unused")
    (project / "conftest.py").write_text(FAKE_ENGINE_CONFTEST)
    (project / "test_app.py").write_text(
        f"def test_cluster(kind_cluster): assert {not fails}\ndef test_plain(): pass\n"
    )
    (command,) = steps(recipe, "tests")
    result = run_step(command, project, recipe.env)
    assert result.returncode == (1 if fails else 0), result.stdout + result.stderr
    junit = ET.parse(project / recipe.junit_artifact).getroot()
    props = {p.get("name", "") for p in junit.iterfind("testsuite/properties/property")}
    assert [p for p in props if p.endswith(".time_to_ready")], props
    assert [p for p in props if ".phase.kubeadm-init" in p], props
    logs = project / recipe.logs_artifact
    # Logs exist exactly when the recipe's failure-only upload has something to send.
    assert logs.is_dir() == fails
    if fails:
        assert any(logs.rglob("*.log")), sorted(logs.rglob("*"))


# -- the node-image step: docker save/load through the cache directory ---------------------


@pytest.fixture
def tiny_image() -> Iterator[tuple[Any, str]]:
    """A one-file image in the real engine (no registry needed); removed afterwards."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"this test needs a Docker engine (scripts/setup-docker.sh): {exc}")
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        data = b"stand-in for a node image\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    source = f"pytest-kindcluster-recipe/tiny:{secrets.token_hex(4)}"
    repository, tag = source.split(":")
    client.api.import_image_from_data(payload.getvalue(), repository=repository, tag=tag)
    yield client, source
    client.images.remove(source, force=True)
    client.close()


@pytest.mark.integration
@pytest.mark.parametrize("name", sorted(RECIPE_LOADERS))
def test_node_image_step_builds_once_then_loads_from_the_cache(
    name: str, tmp_path: Path, tiny_image: tuple[Any, str]
) -> None:
    client, source = tiny_image
    recipe = RECIPE_LOADERS[name](tmp_path)
    project = make_project(tmp_path, recipe, source_image=source)
    image = f"pytest-kindcluster-recipe/node:{name}-{secrets.token_hex(4)}"
    env = {**recipe.env, "KIND_IMAGE": image}
    cache = Path(env["NODE_IMAGE_CACHE"])
    cache = cache if cache.is_absolute() else project / cache
    (command,) = steps(recipe, "node-image")
    calls = project / "build-calls"
    try:
        # A stale archive from an older reference is dropped when the new one is saved.
        cache.mkdir(parents=True)
        (cache / "pytest-kindcluster_node_v0.tar").write_bytes(b"old")

        first = run_step(command, project, env)
        assert first.returncode == 0, first.stdout + first.stderr
        assert calls.read_text().split() == [image]  # built (here: tagged) exactly once
        (archive,) = cache.glob("*.tar")
        assert archive.name == re.sub(r"[/:@]", "_", image) + ".tar"
        built_id = client.images.get(image).id

        # The next pipeline run: a fresh engine, the cache directory restored.
        client.images.remove(image)
        second = run_step(command, project, env)
        assert second.returncode == 0, second.stdout + second.stderr
        assert re.search(rf"loading \S*/{re.escape(archive.name)}\n", second.stdout)
        assert calls.read_text().split() == [image]  # not built again
        assert client.images.get(image).id == built_id

        third = run_step(command, project, env)
        assert "already in the engine" in third.stdout
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(image, force=True)


def test_node_image_step_refuses_bad_usage(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(RECIPES / "node-image.sh"), "only-one-arg"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "usage:" in result.stderr
