#!/usr/bin/env bash
# Set up, index the bundled sample corpus, and search it (nothing is downloaded).
#
#   scripts/demo.sh                       the sample query
#   scripts/demo.sh "your own question"   another query
#
# The index lives in ./.semsearch (SEMSEARCH_DATA_DIR); a rerun re-indexes
# nothing that did not change.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
query="${1:-my laptop shows a screen asking for a long number before it starts}"
echo "== semsearch ingest samples/corpus"
.venv/bin/semsearch ingest samples/corpus
echo "== semsearch search \"$query\""
.venv/bin/semsearch search "$query" --top-k 3
