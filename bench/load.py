"""Load: concurrent searches, ingest beside searches, and the job queue's throughput.

(a) search: a collection of real all-MiniLM-L6-v2 embeddings in the embedded
store, built as bench/query.py builds it (SciFact abstracts with noise, four
points a document, a catalog row each, HNSW index), searched by 1 and by 8
threads: QPS and p50 / p95 of ``Searcher.search()`` end to end (encoding the
query, the store query, the catalog join; hybrid, the default, and dense) and
of the store alone (dense and hybrid, the queries' embeddings given). Every
timed query is new to its Searcher, so none comes from its query cache.

(b) ingest: SciFact abstracts written as files and ingested into that index
with the same encoder, alone and while 8 threads keep searching (hybrid):
chunks/s, and the searches' QPS and p50 / p95 meanwhile.

(c) queue: ``--jobs`` small jobs (8 one-chunk files each) on PostgreSQL run
by 1, 2 and 4 worker processes over bench.standins (a FixedCostEncoder of
``--chunk-cost`` seconds a chunk, a SqlPointStore in the same database):
jobs/s and chunks/s from the first claim to the last finish, against the
ideal (workers / chunk cost). A first row at no encoding cost shows what a
job costs the queue and the pipeline themselves; "expected" adds that time
to each job's encoding, as if workers never slowed one another. Each run
gets a fresh database on the server of ``--database-url``, dropped after.

Threads: numpy's BLAS is held to one thread (its pool would only compete with
torch's on 2 cores). torch keeps its default (one thread per core) for one
searcher; for 8 it runs at 1 thread and at its default (``torch`` column),
the requests filling the cores either way. (b) runs at torch's default, as a
server would. The store's engine calls hold the GIL (search.stores.edge).

    .venv/bin/python bench/load.py                        # 200k points, all parts
    .venv/bin/python bench/load.py --quick                # 20k points, fewer of all
    .venv/bin/python bench/load.py --parts queue --workers 1,2,4 --json out.json

The 200k build takes a few minutes and about 2 GB (bench/query.py); the first
run of a bench that needs the corpus embeddings encodes them (5-10 minutes).
"""

# ruff: noqa: E402 (the sys.path fix below comes before the imports it affects)

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path, where
# bench/ingest.py would shadow the ingest package; bench.query and
# bench.standins are found from the repo root.
BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(BENCH.parent))

import numpy as np
import torch
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from bench.query import DEFAULT_DATASET, MODEL, load_corpus, load_store, make_collection
from bench.standins import FixedCostEncoder, SqlPointStore, run_worker
from ingest import jobs
from ingest.consistency import check
from ingest.pipeline import IngestOptions, Ingestor
from search import Encoder, bm25
from search.analysis import Analyzer
from search.app import App, collection_name
from search.catalog.engine import create_catalog_engine, open_catalog, upgrade
from search.catalog.models import Document, Job, JobStatus
from search.retrieval import DEFAULT_FUSION, HYBRID_PREFETCH, Searcher
from search.settings import Settings
from search.stores.edge import EdgeStore

ADMIN_URL = os.environ.get(
    "SEMSEARCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WARMUP = 20
SEARCHERS = 8
FILES_PER_JOB = 8
NAME = collection_name(MODEL)
log = logging.getLogger("bench.load")


def stats(latencies: list[float], wall_s: float) -> dict[str, float]:
    ms = np.array(latencies) * 1000
    return {
        "queries": len(latencies),
        "qps": len(latencies) / wall_s,
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
    }


def timed_load(
    call: Callable[[Any], object], items: Sequence[Any], threads: int
) -> dict[str, float]:
    """``threads`` threads call ``call`` on the items, each taking the next one."""
    queue = iter(items)
    lock = threading.Lock()
    latencies: list[float] = []

    def work() -> None:
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                return
            started = time.perf_counter()
            call(item)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return stats(latencies, time.perf_counter() - started)


@contextmanager
def torch_threads(count: int | None) -> Iterator[int]:
    default = torch.get_num_threads()
    torch.set_num_threads(count or default)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(default)


def fresh(texts: Sequence[str], run: int) -> list[str]:
    """The queries, made new to a Searcher's query cache by a run number."""
    return [f"{t} ({run})" for t in texts]


def build_index(
    size: int, corpus: Any, data_dir: Path
) -> tuple[EdgeStore, Engine, Settings, dict[str, Any]]:
    """bench/query.py's collection of ``size`` points, indexed, and its catalog."""
    coll = make_collection(corpus, size, np.random.default_rng(size))
    settings = Settings(data_dir=data_dir, model=MODEL, database_url=None)
    engine = open_catalog(settings)
    with Session(engine) as session:
        session.execute(insert(Document), coll.rows)
        session.commit()
    info: dict[str, Any] = {"documents": len(coll.rows)}
    store = load_store(settings.store_dir, NAME, coll, corpus, info)
    started = time.perf_counter()
    store.optimize(NAME, wait=True)
    info["optimize_s"] = time.perf_counter() - started
    return store, engine, settings, info


def search_part(
    store: EdgeStore, engine: Engine, encoder: Encoder, texts: list[str]
) -> list[dict[str, Any]]:
    """(a): the store alone and ``Searcher.search()``, at 1 and 8 threads."""
    analyzer = Analyzer()
    vectors = list(encoder.encode(texts))
    pairs = [
        (v, bm25.query_vector(analyzer.terms(t)))
        for v, t in zip(vectors, texts, strict=True)
    ]
    for vector in vectors:  # the new index's pages are cold (bench/query.py)
        store.search(NAME, vector, 10)

    def dense(vector: Any) -> object:
        return store.search(NAME, vector, 10)

    def hybrid(pair: Any) -> object:
        return store.search_hybrid(
            NAME, pair[0], pair[1], 10, fusion=DEFAULT_FUSION, prefetch=HYBRID_PREFETCH
        )

    rows: list[dict[str, Any]] = []
    for path, call, items in (("dense", dense, vectors), ("hybrid", hybrid, pairs)):
        timed_load(call, items[:WARMUP], 1)
        for threads in (1, SEARCHERS):
            result = timed_load(call, items, threads)
            rows.append({"path": f"store {path}", "threads": threads, **result})

    # A first untimed pass over every query warms the catalog pages the join
    # reads and the sparse index (200k hybrid, 1 thread: a cold first pass
    # read p95 170 ms, a warm one 40 ms).
    runs = [(1, None), (SEARCHERS, 1), (SEARCHERS, None)]
    for mode in ("hybrid", "dense"):
        for n, (threads, torch_n) in enumerate(runs):
            searcher = Searcher(encoder, store, engine, NAME)

            def search(query: str, s: Searcher = searcher, mode: str = mode) -> object:
                return s.search(query, top_k=10, mode=mode)

            with torch_threads(torch_n) as used:
                warm = texts if n == 0 else texts[:WARMUP]
                timed_load(search, fresh(warm, -1 - n), 1)
                result = timed_load(search, fresh(texts, n), threads)
            path = f"search() {mode}"
            rows.append({"path": path, "threads": threads, "torch": used, **result})
    return rows


def write_abstracts(dataset: Path, folder: Path, start: int, count: int) -> None:
    folder.mkdir(parents=True)
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as lines:
        for n, line in enumerate(lines):
            if start <= n < start + count:
                record = json.loads(line)
                body = f"{record['title']}\n\n{record['text']}\n"
                (folder / f"{record['_id']}.txt").write_text(body, encoding="utf-8")


def ingest_part(
    store: EdgeStore,
    engine: Engine,
    settings: Settings,
    encoder: Encoder,
    texts: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """(b): ingest alone, then another as many files while 8 threads search."""
    root = settings.data_dir / "files"
    write_abstracts(args.dataset, root / "alone", 0, args.ingest_docs)
    write_abstracts(args.dataset, root / "loaded", args.ingest_docs, args.ingest_docs)
    app = App(settings, store=store)
    app.__dict__.update(encoder=encoder, engine=engine)

    def ingest(folder: Path) -> dict[str, float]:
        started = time.perf_counter()
        summary = Ingestor(app).run([folder], IngestOptions())
        seconds = time.perf_counter() - started
        return {
            "chunks": summary.chunks,
            "s": seconds,
            "rate": summary.chunks / seconds,
        }

    result: dict[str, Any] = {"alone": ingest(root / "alone")}
    searcher = Searcher(encoder, store, engine, NAME)
    done = threading.Event()
    latencies: list[float] = []
    counter = iter(range(10**9))

    def search() -> None:
        while not done.is_set():
            n = next(counter)
            query = fresh([texts[n % len(texts)]], n)[0]
            started = time.perf_counter()
            searcher.search(query, top_k=10)
            latencies.append(time.perf_counter() - started)

    pool = [threading.Thread(target=search) for _ in range(SEARCHERS)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    result["with_searches"] = ingest(root / "loaded")
    done.set()
    for thread in pool:
        thread.join()
    result["searches"] = stats(latencies, time.perf_counter() - started)
    return result


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``admin_url``, at the newest schema."""
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"semsearch_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_catalog_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def write_jobs(root: Path, count: int) -> list[Path]:
    """``count`` folders of FILES_PER_JOB files, each one chunk of its own text."""
    rng = random.Random(5)
    words = [f"w{n}" for n in range(2000)]
    folders = []
    for job in range(count):
        folder = root / f"job{job:03d}"
        folder.mkdir(parents=True)
        for i in range(FILES_PER_JOB):
            body = f"Job {job} file {i}. " + " ".join(rng.choices(words, k=120))
            (folder / f"file{i}.txt").write_text(body, encoding="utf-8")
        folders.append(folder)
    return folders


def queue_run(
    admin_url: str, folders: list[Path], workers: int, cost: float, work: Path
) -> dict[str, Any]:
    """One run of (c): all jobs queued, then ``workers`` processes at once."""
    with fresh_database(admin_url) as url:
        settings: dict[str, Any] = {
            "data_dir": str(work / "data"),
            "model": "fixed-cost",
            "database_url": url,
            "qdrant_url": "http://sql-standin.invalid:6333",
        }
        app = App(Settings(**settings), store=SqlPointStore(url))
        app.__dict__["encoder"] = FixedCostEncoder()
        params = [jobs.ingest_params([f], IngestOptions()) for f in folders]
        ids = [jobs.enqueue(app, p) for p in params]

        context = multiprocessing.get_context("spawn")
        start = context.Barrier(workers)
        children = [
            context.Process(
                target=run_worker,
                args=(settings, url, f"w{n}", cost),
                kwargs={"start": start},
            )
            for n in range(workers)
        ]
        for child in children:
            child.start()
        for child in children:
            child.join()

        with Session(app.engine) as session:
            rows = list(session.scalars(select(Job).where(Job.id.in_(ids))))
        consistent = check(app).consistent
        app.close()
    if {r.status for r in rows} != {JobStatus.DONE} or not consistent:
        raise RuntimeError(f"queue run with {workers} workers did not finish cleanly")
    seconds = (
        max(r.finished_at for r in rows if r.finished_at)
        - min(r.started_at for r in rows if r.started_at)
    ).total_seconds()
    chunks = sum((r.summary or {}).get("chunks", 0) for r in rows)
    ideal = workers / cost if cost else None
    return {
        "workers": workers,
        "chunk_cost_ms": cost * 1000,
        "jobs": len(rows),
        "chunks": chunks,
        "s": seconds,
        "jobs_per_s": len(rows) / seconds,
        "chunks_per_s": chunks / seconds,
        "ideal_chunks_per_s": ideal,
        "of_ideal": chunks / seconds / ideal if ideal else None,
        "jobs_per_worker": sorted(Counter(r.worker for r in rows).values()),
    }


def queue_part(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    """(c): the run at no encoding cost first; its time a job is the overhead
    that the "expected" figure adds to each job's encoding (no contention)."""
    folders = write_jobs(work / "jobs", args.jobs)
    runs = [(1, 0.0)] + [(n, args.chunk_cost) for n in args.workers]
    rows: list[dict[str, Any]] = []
    for workers, cost in runs:
        log.info("queue: %d workers, %.0f ms a chunk", workers, cost * 1000)
        row = queue_run(args.database_url, folders, workers, cost, work)
        overhead = rows[0]["s"] / rows[0]["jobs"] if rows else row["s"] / row["jobs"]
        per_job = row["chunks"] / row["jobs"]
        row["expected_chunks_per_s"] = workers * per_job / (per_job * cost + overhead)
        rows.append(row)
    return rows


def print_tables(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print(
        f"# {machine['cores']} cores, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), query precision "
        f"{machine['precision']}; times in ms"
    )
    for size, part in results["sizes"].items():
        if "search" in part:
            print(f"\n(a) {int(size):,} points, {part['queries']} queries a row\n")
            print("| path | threads | torch | QPS | p50 | p95 |")
            print("|---|---|---|---|---|---|")
            for r in part["search"]:
                print(
                    f"| {r['path']} | {r['threads']} | {r.get('torch', '-')} "
                    f"| {r['qps']:.1f} | {r['p50']:.2f} | {r['p95']:.2f} |"
                )
        if "ingest" in part:
            b = part["ingest"]
            print(f"\n(b) {int(size):,} points: ingest, and 8 threads searching\n")
            print("| ingest | chunks | s | chunks/s | searches/s | search p50 / p95 |")
            print("|---|---|---|---|---|---|")
            alone, loaded, s = b["alone"], b["with_searches"], b["searches"]
            print(
                f"| alone | {alone['chunks']} | {alone['s']:.1f} "
                f"| {alone['rate']:.1f} | - | - |"
            )
            print(
                f"| with 8 searchers | {loaded['chunks']} | {loaded['s']:.1f} "
                f"| {loaded['rate']:.1f} | {s['qps']:.1f} "
                f"| {s['p50']:.1f} / {s['p95']:.1f} |"
            )
    if results.get("queue"):
        print(f"\n(c) queue on PostgreSQL, {FILES_PER_JOB} one-chunk files a job\n")
        print(
            "| workers | ms a chunk | jobs | chunks | s | jobs/s | chunks/s "
            "| ideal chunks/s | of ideal | expected chunks/s | jobs per worker |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for r in results["queue"]:
            ideal = f"{r['ideal_chunks_per_s']:.0f}" if r["ideal_chunks_per_s"] else "-"
            share = f"{r['of_ideal']:.2f}" if r["of_ideal"] else "-"
            print(
                f"| {r['workers']} | {r['chunk_cost_ms']:.0f} | {r['jobs']} "
                f"| {r['chunks']} | {r['s']:.1f} | {r['jobs_per_s']:.2f} "
                f"| {r['chunks_per_s']:.1f} | {ideal} | {share} "
                f"| {r['expected_chunks_per_s']:.1f} | {r['jobs_per_worker']} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="search,ingest,queue")
    parser.add_argument("--sizes", default="200000", help="points, with commas")
    parser.add_argument("--queries", type=int, default=300, help="per row of (a)")
    parser.add_argument("--ingest-docs", type=int, default=300, help="per run of (b)")
    parser.add_argument("--workers", default="1,2,4", help="process counts of (c)")
    parser.add_argument("--jobs", type=int, default=48, help="jobs per run of (c)")
    parser.add_argument("--chunk-cost", type=float, default=0.05, help="seconds")
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", ADMIN_URL)
    )
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--quick", action="store_true", help="20k points, fewer of all")
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries, args.ingest_docs, args.jobs = "20000", 100, 100, 16
    args.workers = [int(n) for n in args.workers.split(",")]
    parts = set(args.parts.split(","))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.setLevel(logging.INFO)

    results: dict[str, Any] = {"params": {k: str(v) for k, v in vars(args).items()}}
    results["machine"] = {
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "precision": None,
    }
    results["sizes"] = {}
    work = Path(tempfile.mkdtemp(prefix="semsearch-bench-load-"))
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            if parts & {"search", "ingest"}:
                encoder = Encoder(MODEL, precision="auto")
                results["machine"]["precision"] = encoder.precision
                corpus = load_corpus(args.dataset, encoder)
                with (args.dataset / "queries.jsonl").open(encoding="utf-8") as lines:
                    texts = [json.loads(line)["text"] for line in lines][: args.queries]
                for size in [int(s) for s in args.sizes.split(",")]:
                    log.info("%d points: building the index", size)
                    store, engine, settings, info = build_index(
                        size, corpus, work / str(size)
                    )
                    part: dict[str, Any] = {"queries": len(texts), **info}
                    try:
                        if "search" in parts:
                            part["search"] = search_part(store, engine, encoder, texts)
                        if "ingest" in parts:
                            part["ingest"] = ingest_part(
                                store, engine, settings, encoder, texts, args
                            )
                    finally:
                        store.close()
                        engine.dispose()
                        shutil.rmtree(work / str(size), ignore_errors=True)
                    results["sizes"][str(size)] = part
            if "queue" in parts:
                results["queue"] = queue_part(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print_tables(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str), "utf-8")


if __name__ == "__main__":
    main()
