# The two commands the README documents. Both start with the same idempotent set-up.
.PHONY: setup examples test lint node-image proof floors ci

setup:
	bash scripts/setup.sh

# The main job: the example suite against a fresh cluster.
examples: setup
	.venv/bin/pytest examples/ -v

# The node image alone, then the upstream kind CLI's proof that it honours kind's contract.
node-image: setup
proof: setup
	.venv/bin/pytest -m kindproof -v

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# Everything: lint, unit and plugin tests, integration tests, the installed wheel, the CI
# recipes, and the kind-CLI proof.
test: setup lint
	.venv/bin/pytest -v --durations=15

# The declared dependency range at both ends (tox.ini): fresh environments, so "newest" is
# resolved again on every run.
floors: setup
	.venv/bin/tox run -e lowest,newest --recreate

# What CI runs (.ci/run): the tests, the README's example suite, and the dependency floors.
ci: test examples floors
