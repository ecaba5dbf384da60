#!/usr/bin/env bash
# Every check CI runs: set-up, format, lint, types, tests (pass pytest options).
#
#   scripts/check.sh               everything
#   scripts/check.sh -k encoder    only some tests (the other checks still run)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --dev --with-mpnet
venv=.venv/bin

echo "== ruff format"; "$venv/ruff" format --check .
echo "== ruff lint";   "$venv/ruff" check .
echo "== mypy";        "$venv/mypy"
echo "== pytest";      "$venv/python" -m pytest "$@"
