"""``semsearch eval``: ranking quality on a BEIR collection, per mode."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from search.cli.common import open_app, print_json

MODES = ("dense", "keyword", "hybrid")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure ranking quality on a BEIR folder",
        description="Index a BEIR collection (corpus.jsonl, queries.jsonl, qrels/) "
        "into its own collection and score the split's queries: nDCG@10, MRR@10, "
        "Recall@100, MAP and query latency. A rerun reuses the index.",
    )
    parser.add_argument("folder", type=Path, metavar="BEIR_DIR")
    parser.add_argument("--split", default="test", help="qrels split (default test)")
    parser.add_argument(
        "--mode",
        default=None,
        choices=(*MODES, "all"),
        help="ranking mode (default: the search default); all: each mode",
    )
    parser.add_argument(
        "--fusion",
        choices=("rrf", "dbsf"),
        default="dbsf",
        help="hybrid fusion (default dbsf)",
    )
    parser.add_argument("--rrf-k", type=int, default=60, help="RRF's k (default 60)")
    parser.add_argument(
        "--whole-documents",
        action="store_true",
        help="index each record as one passage cut at the model's limit (BEIR's "
        "convention) instead of ingest's chunks",
    )
    parser.add_argument(
        "--model",
        help="evaluate this model (a registered name or a folder) instead of "
        "the index's; it gets eval collections of its own",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from search.evaluation import Evaluator, load_beir
    from search.retrieval import DEFAULT_MODE, Ranking
    from search.stores.base import Fusion

    data = load_beir(args.folder, args.split)
    modes = MODES if args.mode == "all" else (args.mode or DEFAULT_MODE.value,)
    app = open_app(args)
    try:
        encoder = None
        if args.model:
            from search.active_index import index_for

            encoder = app.encoder_for(index_for(args.model))
        evaluator = Evaluator(
            app, data, whole_documents=args.whole_documents, encoder=encoder
        )
        print(
            f"indexing {len(data.corpus)} documents of {data.name} ...",
            file=sys.stderr,
        )
        index = evaluator.ensure_index(
            progress=lambda line: print(f"  {line}", file=sys.stderr)
        )
        results = [
            evaluator.run(
                Ranking.of(mode, fusion=Fusion(args.fusion), rrf_k=args.rrf_k)
            )
            for mode in modes
        ]
    finally:
        app.close()

    if args.json:
        rows = [r.as_dict() for r in results]
        print_json(rows[0] if len(rows) == 1 else rows)
        return 0
    reused = "reused" if not index["rebuilt"] else f"built in {index['seconds']} s"
    print(
        f"{data.name} {args.split}: {len(data.corpus)} documents, "
        f"{index['chunks']} chunks (index {reused}), {len(data.queries)} queries"
    )
    print(
        f"{'mode':8} {'nDCG@10':>8} {'MRR@10':>8} {'R@100':>8} {'MAP':>8}  p50/p95 ms"
    )
    for r in results:
        m = r.metrics
        print(
            f"{r.mode:8} {m['ndcg@10']:8.4f} {m['mrr@10']:8.4f} "
            f"{m['recall@100']:8.4f} {m['map']:8.4f}  "
            f"{r.latency_ms_p50:.1f} / {r.latency_ms_p95:.1f}"
        )
    return 0
