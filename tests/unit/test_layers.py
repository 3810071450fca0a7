"""The package's layering, read from its imports with ``ast``: no cycles, nothing runs back up.

Layers, top down (docs/architecture.md draws them): the pytest layer, the cluster lifecycle,
provisioning steps, Kubernetes client helpers, the node runtime, kind's config format, and the
shared bottom (errors, contract, util). The node-image builder stands beside them: it may use
anything below the lifecycle, and nothing but the CLI entry may import it. Only the Docker
runtime and the builder may import ``docker``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import pytest_kindcluster

PACKAGE = Path(pytest_kindcluster.__file__).parent
NAME = "pytest_kindcluster"

# Higher ranks may import lower ones (and their own); never the reverse.
RANKS: Mapping[str, int] = {
    "__main__": 9,
    "__init__": 8,
    "plugin": 7,
    "fixtures": 7,
    "settings": 7,
    "markers": 7,
    "coordination": 7,
    "overrides": 7,
    "reporting": 7,
    "signals": 7,
    "cluster": 6,
    "provision": 5,
    "kube": 4,
    "runtime": 3,
    "config": 2,
    "errors": 1,
    "contract": 1,
    "util": 1,
}
BUILDER = "nodeimage"
BUILDER_MAY_USE = {"provision", "kube", "runtime", "config", "errors", "contract", "util"}
DOCKER_ALLOWED = ("runtime.docker", "nodeimage")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"] or ["__init__"]
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[tuple[str, int]]:
    """Absolute module names imported anywhere in the file (lazy imports count too)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from pkg import name": graph() keeps pkg.name if that is a module, else pkg.
            for alias in node.names:
                yield f"{node.module}:{alias.name}", node.lineno


def graph(root: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """Module -> {imported package module: line}, for modules of the package."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    edges: dict[str, dict[str, int]] = {}
    for mod, path in modules.items():
        out = edges.setdefault(mod, {})
        for target, line in imports_of(path):
            package, _, name = target.partition(":")
            short = package.removeprefix(NAME).lstrip(".") or "__init__"
            if not package.startswith(NAME):
                continue
            submodule = name if short == "__init__" else f"{short}.{name}"
            if submodule in modules:
                short = submodule
            if short in modules and short != mod:
                out.setdefault(short, line)
    return edges


def find_cycle(edges: Mapping[str, Mapping[str, int]]) -> list[str] | None:
    """One import cycle (its modules in order, first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(mod: str) -> list[str] | None:
        state[mod] = 1
        path.append(mod)
        for nxt in sorted(edges.get(mod, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[mod] = 2
        return None

    for mod in sorted(edges):
        if mod not in state and (found := visit(mod)):
            return found
    return None


def layer(mod: str) -> str:
    return mod.split(".", maxsplit=1)[0]


def upward_imports(edges: Mapping[str, Mapping[str, int]]) -> list[str]:
    problems = []
    for mod, targets in sorted(edges.items()):
        for target, line in sorted(targets.items()):
            src, dst = layer(mod), layer(target)
            if src == dst:
                continue
            if dst == BUILDER:
                if src != "__main__":
                    problems.append(f"{mod}:{line} imports the builder ({target})")
            elif src == BUILDER:
                if dst not in BUILDER_MAY_USE:
                    problems.append(f"{mod}:{line} (builder) imports {target}")
            elif RANKS[dst] > RANKS[src]:
                problems.append(f"{mod}:{line} imports {target}, a higher layer")
    return problems


def docker_imports(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        mod = module_name(path, root)
        if mod.startswith(DOCKER_ALLOWED):
            continue
        for target, line in imports_of(path):
            package = target.partition(":")[0]
            if package == "docker" or package.startswith("docker."):
                found.append(f"{mod}:{line} imports {package}")
    return found


def test_every_top_level_name_has_a_layer() -> None:
    tops = {layer(m) for m in graph()}
    assert tops - set(RANKS) - {BUILDER} == set()


def test_no_import_cycles() -> None:
    assert find_cycle(graph()) is None


def test_no_import_runs_back_up_a_layer() -> None:
    assert upward_imports(graph()) == []


def test_only_the_docker_runtime_and_the_builder_import_docker() -> None:
    assert docker_imports() == []


# The checks themselves must be able to fail: each on a small package made to break it.


def make_package(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / NAME / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / NAME


def test_a_cycle_is_found(tmp_path: Path) -> None:
    pkg = make_package(
        tmp_path,
        {
            "__init__.py": "",
            "plugin.py": "from pytest_kindcluster import fixtures\n",
            "fixtures.py": "def f():\n    from pytest_kindcluster.plugin import X\n",
        },
    )
    assert find_cycle(graph(pkg)) == ["fixtures", "plugin", "fixtures"]


def test_an_upward_import_and_a_stray_docker_import_are_found(tmp_path: Path) -> None:
    pkg = make_package(
        tmp_path,
        {
            "runtime/__init__.py": "",
            "runtime/base.py": "from pytest_kindcluster.cluster.reaper import Resource\n",
            "cluster/__init__.py": "",
            "cluster/reaper.py": "import docker.errors\n",
        },
    )
    assert upward_imports(graph(pkg)) == ["runtime.base:1 imports cluster.reaper, a higher layer"]
    assert docker_imports(pkg) == ["cluster.reaper:1 imports docker.errors"]


@pytest.mark.parametrize("builder_import", ["cluster.lifecycle", "settings"])
def test_the_builder_stays_beside_the_lifecycle(tmp_path: Path, builder_import: str) -> None:
    top = builder_import.split(".", maxsplit=1)[0]
    files = {
        "nodeimage/__init__.py": "",
        "nodeimage/build.py": f"from pytest_kindcluster.{builder_import} import X\n",
        f"{builder_import.replace('.', '/')}.py": "",
    }
    if "." in builder_import:
        files[f"{top}/__init__.py"] = ""
    pkg = make_package(tmp_path, files)
    assert upward_imports(graph(pkg)) == [f"nodeimage.build:1 (builder) imports {builder_import}"]


def test_every_exception_class_is_defined_in_errors_py() -> None:
    elsewhere = []
    for path in sorted(PACKAGE.rglob("*.py")):
        mod = module_name(path)
        if mod == "__main__":
            continue
        module = importlib.import_module(f"{NAME}.{mod}" if mod != "__init__" else NAME)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            defined_here = obj.__module__ == module.__name__
            if defined_here and issubclass(obj, BaseException) and mod != "errors":
                elsewhere.append(f"{mod}.{obj.__name__}")
    assert elsewhere == []


def test_test_files_have_unique_basenames() -> None:
    # Test folders have no __init__.py, so pytest imports test files by basename: two files of one
    # name in different folders fail collection of the whole suite ("import file mismatch").
    root = PACKAGE.parent
    names = [p.name for top in ("tests", "examples") for p in (root / top).rglob("test_*.py")]
    assert sorted({n for n in names if names.count(n) > 1}) == []
