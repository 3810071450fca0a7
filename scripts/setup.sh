#!/usr/bin/env bash
# Everything a fresh machine needs before the tests or the examples can run:
#   a Docker engine, the build tools, a virtualenv with the plugin, the kind CLI (for the proof
#   test and the benchmark), actionlint (for the CI recipes) and the node image. Each step is
#   skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\nsetup: %s\n' "$*" >&2; }
KIND_VERSION=v0.33.0
ACTIONLINT_VERSION=v1.7.12

log "docker engine"
bash scripts/setup-docker.sh

log "build tools (debootstrap, a C toolchain, static libseccomp for runc; shellcheck)"
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
[ -e /usr/lib/x86_64-linux-gnu/libseccomp.a ] || missing+=(libseccomp-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v shellcheck >/dev/null || missing+=(shellcheck)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "setup: Go >= 1.26 is needed to compile Kubernetes" >&2; exit 1; }

log "python virtualenv .venv"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test,lint,ci]'

log "kind CLI $KIND_VERSION (used by the proof test and the benchmark, never by the plugin)"
kind_bin="$(go env GOPATH)/bin/kind"
if ! { [ -x "$kind_bin" ] && "$kind_bin" version | grep -q "$KIND_VERSION"; }; then
    GOTOOLCHAIN=local go install "sigs.k8s.io/kind@$KIND_VERSION"
fi

log "actionlint $ACTIONLINT_VERSION (lints the GitHub Actions recipe in examples/ci)"
actionlint_bin="$(go env GOPATH)/bin/actionlint"
if ! { [ -x "$actionlint_bin" ] && [[ "$("$actionlint_bin" --version)" == "$ACTIONLINT_VERSION"$'\n'* ]]; }; then
    GOTOOLCHAIN=local go install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
fi

log "node image (compiled components are cached in ~/.cache/pytest-kindcluster)"
.venv/bin/python -m pytest_kindcluster node-image build
