"""Fine-tuning all-MiniLM-L6-v2 on SciFact train: the gate of issue 8.

Trains with search.finetune (what ``semsearch finetune`` runs), then scores
base and tuned model by dense nDCG@10 over whole documents (BEIR's way: the
published 0.645 of the base model) with exact cosine search, through
:class:`search.Encoder`, so the tuned folder is also checked to load there.

Tuning is done on the train split alone: ``--holdout 0.2`` trains on 80% of
the train queries and scores the other 20%. Without it the model trains on
all of train and is scored on test, and on an unrelated collection
(bench/unrelated.py: Python's docstrings) for what it may have forgotten.

    .venv/bin/python bench/finetune.py --holdout 0.2   # tuning: 3 epochs, lr 3e-5
    .venv/bin/python bench/finetune.py --json bench/results/finetune.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SCIFACT = REPO.parent / "shared" / "datasets" / "scifact"
UNRELATED = REPO / "bench" / "results" / "unrelated-stdlib"


def dense_ndcg(
    model: str | Path,
    corpus: dict[str, str],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
) -> float:
    from search import Encoder
    from search.metrics import ndcg_at_k

    encoder = Encoder(model)
    ids = sorted(corpus)
    docs = encoder.encode([corpus[i] for i in ids], batch_size=32)
    qids = sorted(q for q in queries if q in qrels)
    vectors = encoder.encode([queries[q] for q in qids], batch_size=64)
    with threadpool_limits(1):
        scores = vectors @ docs.T
    run = {}
    for row, qid in enumerate(qids):
        top = np.argsort(-scores[row])[:100]
        run[qid] = {ids[j]: float(scores[row, j]) for j in top}
    return ndcg_at_k({q: qrels[q] for q in qids}, run, 10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="all-MiniLM-L6-v2")
    parser.add_argument("--holdout", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--warmup", type=float, default=0.1)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--skip-base", action="store_true")
    parser.add_argument("--hard-negatives", action="store_true")
    parser.add_argument("--keep", type=Path, help="keep the tuned model here")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from search.evaluation import load_beir
    from search.finetune import (
        TrainConfig,
        beir_examples,
        finetune,
        save_folder,
        with_hard_negatives,
    )

    train = load_beir(SCIFACT, "train")
    if args.holdout:
        qids = sorted(train.qrels)
        random.Random(args.seed).shuffle(qids)
        held = set(qids[: int(len(qids) * args.holdout)])
        evaluations = {
            "scifact-train-holdout": (
                train.corpus,
                {q: t for q, t in train.queries.items() if q in held},
                {q: r for q, r in train.qrels.items() if q in held},
            )
        }
        train_examples = [
            e
            for e in beir_examples(SCIFACT)
            if e.first not in {train.queries[q] for q in held}
        ]
    else:
        test = load_beir(SCIFACT, "test")
        evaluations = {"scifact-test": (test.corpus, test.queries, test.qrels)}
        if (UNRELATED / "corpus.jsonl").is_file():
            other = load_beir(UNRELATED, "test")
            evaluations["unrelated-stdlib"] = (other.corpus, other.queries, other.qrels)
        train_examples = beir_examples(SCIFACT)

    if args.hard_negatives:
        started = time.perf_counter()
        train_examples = with_hard_negatives(SCIFACT, train_examples, args.base)
        print(f"mined hard negatives in {time.perf_counter() - started:.0f} s")
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup=args.warmup,
        scale=args.scale,
        seed=args.seed,
        precision=args.precision,
    )
    report: dict[str, Any] = {"config": vars(args) | {"examples": len(train_examples)}}

    def score_epoch(epoch: int, model: Any) -> None:
        if epoch == args.epochs or not args.holdout:
            return  # the final model is scored below; test only once
        began = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            save_folder(model, Path(folder))
            for name, (corpus, queries, qrels) in evaluations.items():
                value = round(dense_ndcg(Path(folder), corpus, queries, qrels), 4)
                report.setdefault(name, {})[f"epoch {epoch}"] = value
                print(name, f"epoch {epoch}", value, flush=True)
        report["epoch_scoring_s"] = report.get("epoch_scoring_s", 0) + (
            time.perf_counter() - began
        )

    with tempfile.TemporaryDirectory() as work:
        out = args.keep or Path(work) / "tuned"
        started = time.perf_counter()
        result = finetune(
            args.base,
            train_examples,
            out,
            config,
            source=str(SCIFACT),
            overwrite=True,
            on_epoch=score_epoch,
        )
        report["train_s"] = round(
            time.perf_counter() - started - report.get("epoch_scoring_s", 0), 1
        )
        report["epoch_losses"] = result.epoch_losses
        report["steps"] = result.steps
        for name, (corpus, queries, qrels) in evaluations.items():
            row = report.setdefault(name, {})
            row["tuned"] = round(dense_ndcg(out, corpus, queries, qrels), 4)
            if not args.skip_base:
                row["base"] = round(dense_ndcg(args.base, corpus, queries, qrels), 4)
            print(name, row, flush=True)
    print(json.dumps(report, indent=2, default=str))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
