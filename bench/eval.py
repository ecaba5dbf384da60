"""Ranking quality of every mode, on SciFact and on the sample corpus.

The figures of the README's "Ranking quality" table, in one run:

- SciFact (../shared/datasets/scifact, BEIR), the test split, each mode, with
  ingest's chunks (the product) and with whole documents cut at the model's
  limit (BEIR's convention, to compare with published figures);
- the bundled sample corpus as a BEIR folder of another kind: 32 workplace
  documents in five formats, and the 15 paraphrased questions of
  samples/QUERIES.md, each with one relevant document.

Indexes live in bench/results/eval-data (the embedding cache makes reruns
quick). Tuning was done on SciFact's train split: ``--split train``.

    .venv/bin/python bench/eval.py [--split test] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, where
# bench/ingest.py would shadow the ingest package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SCIFACT = REPO.parent / "shared" / "datasets" / "scifact"
MODES = ("dense", "keyword", "hybrid")


def samples_as_beir(target: Path) -> Path:
    """samples/corpus and samples/QUERIES.md written as a BEIR folder."""
    from ingest.loaders import load

    corpus_dir = REPO / "samples" / "corpus"
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    with (target / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for path in sorted(corpus_dir.rglob("*")):
            if path.is_file():
                loaded = load(path)
                text = "\n\n".join(s.text for s in loaded.segments)
                record = {
                    "_id": path.relative_to(corpus_dir).as_posix(),
                    "title": loaded.title,
                    "text": text,
                }
                out.write(json.dumps(record) + "\n")
    rows = re.findall(
        r"^\| (\d+) \| (.+?) \| (\S+) \| \S+ \|$",
        (REPO / "samples" / "QUERIES.md").read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    with (target / "queries.jsonl").open("w", encoding="utf-8") as out:
        for number, query, _ in rows:
            out.write(json.dumps({"_id": f"s{number}", "text": query}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"s{number}\t{expected}\t1" for number, _, expected in rows]
    (target / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", "utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test")
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    os.environ["SEMSEARCH_DATA_DIR"] = str(RESULTS / "eval-data")

    from search.app import App
    from search.evaluation import Evaluator, load_beir
    from search.retrieval import Ranking
    from search.settings import load_settings

    runs = [
        (load_beir(args.dataset, args.split), False, "chunks"),
        (load_beir(args.dataset, args.split), True, "whole documents"),
        (load_beir(samples_as_beir(RESULTS / "samples-beir"), "test"), False, "chunks"),
    ]
    app = App(load_settings())
    rows: list[dict[str, Any]] = []
    try:
        for data, whole, passages in runs:
            evaluator = Evaluator(app, data, whole_documents=whole)
            evaluator.ensure_index()
            for mode in MODES:
                result = evaluator.run(Ranking.of(mode))
                rows.append(
                    {"collection": data.name, "passages": passages} | result.as_dict()
                )
                print(
                    f"{data.name} ({passages}) {mode}: {result.metrics}",
                    file=sys.stderr,
                )
    finally:
        app.close()

    print(f"# split {args.split}; precision {app.encoder.precision}; hybrid = DBSF")
    print(
        "| collection | passages | mode | nDCG@10 | MRR@10 | Recall@100 | MAP "
        "| p50 / p95 ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['collection']} | {r['passages']} | {r['mode']} | {r['ndcg@10']:.4f} "
            f"| {r['mrr@10']:.4f} | {r['recall@100']:.4f} | {r['map']:.4f} "
            f"| {r['latency_ms_p50']:.1f} / {r['latency_ms_p95']:.1f} |"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
