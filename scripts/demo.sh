#!/usr/bin/env bash
# Set up, then search the bundled sample by meaning (nothing is downloaded).
#
#   scripts/demo.sh                       the sample query
#   scripts/demo.sh "your own question"   another query
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
query="${1:-what protects my files if a disk breaks?}"
echo "== semsearch similar \"$query\" --file samples/passages.txt"
.venv/bin/semsearch similar "$query" --file samples/passages.txt --top-k 5
