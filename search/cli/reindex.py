"""``semsearch reindex``: switch the index to another model, search going on."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from search.cli.common import open_app, print_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "reindex",
        help="switch the index to another model without stopping search",
        description="Build a collection for MODEL from the indexed chunks (embeddings "
        "that model already made come from the cache) while searches go on "
        "against the live one, then switch to it in one step. An interrupted "
        "reindex switches nothing and resumes when run again; the old collection "
        "is kept, so switching back copies only what changed.",
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a registered model (see `semsearch models`) or a model folder",
    )
    parser.add_argument(
        "--gate",
        type=Path,
        metavar="BEIR_DIR",
        help="evaluate both models on this BEIR folder first and refuse the "
        "switch when the new model's dense nDCG@10 is lower",
    )
    parser.add_argument("--split", default="test", help="the gate's qrels split")
    parser.add_argument(
        "--queue",
        action="store_true",
        help="only queue the job for `semsearch worker` processes, and return",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ingest import jobs
    from ingest.reindex import ReindexSummary, check_model, reindex_params
    from search.cli.ingest import _holds_store, _progress_bar
    from search.errors import SemsearchError

    check_model(args.model)
    if args.gate is not None:
        from search.evaluation import load_beir

        load_beir(args.gate, args.split)  # refused now, not after the queue
    app = open_app(args)
    try:
        params = reindex_params(args.model, args.gate, args.split)
        job_id = jobs.enqueue(app, params, kind=jobs.REINDEX)
        if args.queue:
            print(f"queued job {job_id}")
            return 0
        if app.settings.embedded_store and not _holds_store(app, [job_id]):
            job = jobs.wait_for(app, job_id)
            if job.error:
                raise SemsearchError(f"job {job_id} failed: {job.error}")
            summary = ReindexSummary.from_dict(job.summary or {})
        else:
            try:
                with _progress_bar() as bar:
                    ran = jobs.run_claimed(app, job_id, progress=bar)
                assert isinstance(ran, ReindexSummary)
                summary = ran
            except jobs.JobStoppedError as exc:
                raise SemsearchError(
                    f"{exc}; {exc.outcome()}: run `semsearch reindex` again"
                ) from None
    finally:
        app.close()
    if args.json:
        print_json(summary.as_dict())
    else:
        _print(summary)
    return 0 if summary.switched or summary.note else 1


def _print(summary: Any) -> None:
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if summary.note:
        print(summary.note)
        return
    if summary.gate:
        scores = summary.gate["ndcg@10"]
        print(
            f"gate: dense nDCG@10 {scores['before']:.4f} -> {scores['after']:.4f} "
            f"on {summary.gate['folder']} ({summary.gate['split']})"
        )
    if summary.stopped:
        print(
            "stopped before the switch; search stays on "
            f"{summary.previous}. Run it again to go on.",
            file=sys.stderr,
        )
        return
    print(
        f"switched to {summary.model}: {summary.documents} documents, "
        f"{summary.chunks} chunks ({summary.chunks_encoded} encoded, "
        f"{summary.chunks_reused} from the cache) in {summary.seconds:.1f} s"
    )
    print(f"collection {summary.collection}; {summary.previous} is kept")
