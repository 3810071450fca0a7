"""What this project's own CI (.ci/run) runs: the tests, the README's example suite, and the
dependency range at both ends. `make -n` prints the commands without running any of them."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def ci_commands() -> list[str]:
    run = (ROOT / ".ci" / "run").read_text().splitlines()
    make = [line.split() for line in run if line.startswith("exec make ")]
    assert len(make) == 1, "\n".join(run)
    targets = make[0][2:]
    out = subprocess.run(
        ["make", "-n", "--no-print-directory", *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def test_ci_sets_up_then_runs_the_whole_test_suite() -> None:
    commands = ci_commands()
    assert commands[0] == "bash scripts/setup.sh"
    assert ".venv/bin/mypy" in commands
    assert ".venv/bin/pytest -v --durations=15" in commands  # testpaths: tests/


def test_ci_runs_the_readme_example_suite() -> None:
    assert ".venv/bin/pytest examples/ -v" in ci_commands()


def test_ci_runs_the_lowest_and_newest_dependency_environments() -> None:
    (tox,) = [c for c in ci_commands() if c.startswith(".venv/bin/tox ")]
    assert "-e lowest,newest" in tox
    assert "--recreate" in tox  # "newest" resolves again on every run


def test_setup_installs_the_ci_tools() -> None:
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "'.[test,lint,ci]'" in setup  # tox
    assert "github.com/rhysd/actionlint/cmd/actionlint@" in setup
    assert "shellcheck" in setup
