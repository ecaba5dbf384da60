"""Ingest end to end against encoding alone, on the same chunks, in one run.

The SciFact corpus is written out as text files (title, blank line, abstract),
ingested into a fresh embedded index (walk, load, chunk, encode, upsert,
catalog), and then the very chunk texts that ingest produced are encoded
again by the encoder alone. The ratio of the two throughputs is what the
pipeline costs on top of the model; the target is at least 0.85.

    .venv/bin/python bench/ingest.py                  # all 5,183 documents
    .venv/bin/python bench/ingest.py --docs 500       # a quick look

``--overlap all|write|none`` chooses which steps run in threads of their own
(SEMSEARCH_INGEST_OVERLAP; auto: none on the CPU with the embedded store).
``--in-turn`` also ingests the same files into a second fresh index with the
steps run one after the other (read, encode, write in the caller's thread),
to show what running them overlapped (ingest.stages) gains.

``--profile`` prints where ingest's time went (the profiler slows the Python
parts, so its run's ratio reads low).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, and this file
# (bench/ingest.py) would shadow the ingest package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

from ingest.pipeline import Ingestor  # noqa: E402
from search.app import App  # noqa: E402
from search.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "scifact"


def write_corpus(dataset: Path, folder: Path, limit: int | None) -> int:
    count = 0
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            if limit is not None and count >= limit:
                break
            record = json.loads(line)
            text = f"{record['title']}\n\n{record['text']}\n"
            (folder / f"{record['_id']}.txt").write_text(text, encoding="utf-8")
            count += 1
    return count


def chunk_texts(app: App) -> list[str]:
    texts: list[str] = []
    offset = None
    while True:
        points, offset = app.store.scroll(app.collection, limit=2048, offset=offset)
        texts.extend(p.payload["text"] for p in points)
        if offset is None:
            return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--docs", type=int, default=None, help="first N documents")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--profile", action="store_true", help="print the full profile")
    parser.add_argument(
        "--in-turn", action="store_true", help="also ingest with the steps in turn"
    )
    parser.add_argument(
        "--overlap", default="auto", choices=["auto", "all", "write", "none"]
    )
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="semsearch-bench-") as work:
        corpus = Path(work) / "corpus"
        corpus.mkdir()
        documents = write_corpus(args.dataset, corpus, args.docs)
        settings = Settings(
            data_dir=Path(work) / "data",
            model=args.model,
            precision=args.precision,
            ingest_overlap=args.overlap,
        )
        app = App(settings)
        # Load the model and warm its kernels on texts of every length first,
        # so that neither side pays first-use costs (with 8 short warm-up texts
        # the ratio read 0.78 on 300 documents; with these, 0.97).
        sample = [p.read_text("utf-8") for p in sorted(corpus.iterdir())[:256]]
        app.encoder.encode([t[: 40 + 6 * i] for i, t in enumerate(sample)])

        # The profiler slows Python code down, so it runs only when asked.
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        summary = Ingestor(app).run([corpus])
        if profiler:
            profiler.disable()
        ingest_s = time.perf_counter() - started

        in_turn_s = None
        if args.in_turn:
            turn = {"data_dir": Path(work) / "turn", "ingest_overlap": "none"}
            other = App(settings.model_copy(update=turn))
            other.__dict__["encoder"] = app.encoder
            in_turn = Ingestor(other)
            started = time.perf_counter()
            in_turn.run([corpus])
            in_turn_s = time.perf_counter() - started
            other.close()

        texts = chunk_texts(app)
        started = time.perf_counter()
        app.encoder.encode(texts)
        encode_s = time.perf_counter() - started
        app.close()

    results: dict[str, Any] = {
        "documents": documents,
        "chunks": summary.chunks,
        "failed": summary.failed,
        "ingest_s": round(ingest_s, 2),
        "encode_only_s": round(encode_s, 2),
        "ingest_chunks_per_s": round(summary.chunks / ingest_s, 1),
        "encode_only_chunks_per_s": round(len(texts) / encode_s, 1),
        "ratio": round((summary.chunks / ingest_s) / (len(texts) / encode_s), 3),
        "precision": app.encoder.precision,
    }
    if in_turn_s is not None:
        results["in_turn_s"] = round(in_turn_s, 2)
        results["in_turn_chunks_per_s"] = round(summary.chunks / in_turn_s, 1)
        results["overlap_speedup"] = round(in_turn_s / ingest_s, 3)
    print("| documents | chunks | ingest chunks/s | encode-only chunks/s | ratio |")
    print("|---|---|---|---|---|")
    print(
        f"| {documents} | {summary.chunks} | {results['ingest_chunks_per_s']} | "
        f"{results['encode_only_chunks_per_s']} | {results['ratio']:.2f} "
        f"({'PASS' if results['ratio'] >= 0.85 else 'FAIL'}: target 0.85) |"
    )
    if in_turn_s is not None:
        print(
            f"\nSteps in turn: {results['in_turn_chunks_per_s']} chunks/s; "
            f"overlapped: {results['ingest_chunks_per_s']} "
            f"({results['overlap_speedup']:.2f}x)"
        )
    if profiler:
        listing = io.StringIO()
        pstats.Stats(profiler, stream=listing).sort_stats("cumulative").print_stats(40)
        print("\nWhere ingest's time went (cumulative seconds, profiled run):")
        print(listing.getvalue())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
