"""The query path at scale: store search, Searcher end to end, numpy brute force.

For each size (points; default 20k and 200k) it builds a collection in a
temporary data dir, the way ingest would leave it, and times top-k queries:

- the store alone (``EdgeStore.search``, top_k 10), exact before the HNSW
  index is built and with it after ``optimize()``;
- ``Searcher.search()`` end to end: query encoding, the store query (it asks
  for top_k + 8) and the join with the SQLite catalog; and the same with the
  queries' embeddings handed in, to show what is left without the model;
- numpy brute force on the same normalized float32 vectors (matrix @ query,
  argpartition, top 10), with numpy's BLAS at its default thread count and
  limited to one thread; a filtered brute force evaluates the filter on
  payload columns into a boolean mask per query and scores only those rows;
- recall@10 of the store's hits against that exact brute force.

Each runs without a filter and with two: ``pdf+2024`` (file_type pdf, one of
5 types, and a date in 2024, one year of 3: about 6.7% of points) and
``tag legal`` (a tag 3% of documents carry). p50 / p95 are over ``--queries``
SciFact claims, after 20 warm-up queries.

Points are real all-MiniLM-L6-v2 (fp32) embeddings of the 5,183 SciFact
abstracts (title + " " + text), encoded once and cached under
bench/results/cache/. Point i copies abstract i mod 5,183 with Gaussian noise
(sigma 0.0125 per dimension, then renormalized: cos to its source about 0.97,
two copies of one abstract about 0.94, like overlapping chunks of one text).
Four consecutive points form one document, with a random file type, a date
over 2023-2025 and tags; each document has a catalog row with its active
version, so that the Searcher keeps every hit.

The collection is made with the store's default ``hnsw_threshold`` (20,000,
which also sets the exact-search cut-off for small filters), then loaded by a
store that never builds on its own, so that the build is timed alone.

    .venv/bin/python bench/query.py                          # 20k and 200k
    .venv/bin/python bench/query.py --sizes 2000 --queries 50  # a quick look

Targets, checked at the largest size: store p95 at most a quarter of the
faster brute force p95, recall@10 at least 0.99, end-to-end p95 at most 15 ms.
The whole run takes about 6 minutes on 2 CPU cores, 3 of them the 200k build
(about 2 GB); the first run also encodes the corpus (5-10 minutes).
"""

# ruff: noqa: E402 (the sys.path fix below comes before the imports it affects)

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

# Run as a script, this file's folder comes first on sys.path, where
# bench/ingest.py would shadow the ingest package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import numpy as np
import numpy.typing as npt
import torch
from sqlalchemy import insert
from sqlalchemy.orm import Session
from threadpoolctl import (  # type: ignore[import-untyped]
    threadpool_info,
    threadpool_limits,
)

from ingest.pipeline import point_id
from search import Encoder, bm25
from search.access import UNGROUPED, AccessPolicy
from search.analysis import Analyzer
from search.app import INDEXED_FIELDS, collection_name
from search.catalog import repository as repo
from search.catalog.engine import open_catalog
from search.catalog.models import Document, DocumentStatus
from search.filters import SearchFilters, build_filter, path_prefixes
from search.retrieval import DEFAULT_FUSION, HYBRID_PREFETCH, Searcher
from search.settings import Settings
from search.stores.base import (
    CollectionSpec,
    Filter,
    MatchAll,
    MatchAny,
    Point,
    Range,
    SparseVector,
)
from search.stores.edge import EdgeStore

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "scifact"
CACHE_DIR = REPO / "bench" / "results" / "cache"
MODEL = "all-MiniLM-L6-v2"
WARMUP = 20
NOISE_SIGMA = 0.0125
CHUNKS_PER_DOCUMENT = 4
UPSERT_BATCH = 5000
FILE_TYPES = ("pdf", "docx", "html", "md", "txt")
# Each document gets each tag independently with this probability.
TAG_ODDS = {"internal": 0.30, "draft": 0.15, "review": 0.08, "legal": 0.03}
TAGS = list(TAG_ODDS)
DATE_START = int(datetime(2023, 1, 1, tzinfo=UTC).timestamp())
DATE_SPAN_S = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) - DATE_START
FILTERS: dict[str, SearchFilters | None] = {
    "none": None,
    "pdf+2024": SearchFilters(
        file_types=("pdf",), since=date(2024, 1, 1), until=date(2024, 12, 31)
    ),
    "tag legal": SearchFilters(tags=("legal",)),
}
TARGET_RATIO = 4.0
TARGET_RECALL = 0.99
TARGET_E2E_MS = 15.0

log = logging.getLogger("bench.query")


@dataclass
class Corpus:
    titles: list[str]
    texts: list[str]
    vectors: npt.NDArray[np.float32]
    # BM25 weights of each abstract, as ingest would write them.
    sparse: list[SparseVector] = field(default_factory=list)


@dataclass
class Queries:
    """Timed queries and warm-up queries, as text and as embeddings."""

    texts: list[str]
    vectors: npt.NDArray[np.float32]
    warm_texts: list[str]
    warm_vectors: npt.NDArray[np.float32]
    top_k: int


@dataclass
class Collection:
    """Synthetic points: vectors, catalog rows, point ids and payload columns."""

    vectors: npt.NDArray[np.float32]
    sources: npt.NDArray[np.int64]  # per point, its abstract's row in the corpus
    file_type: npt.NDArray[np.int64]  # per point, an index into FILE_TYPES
    date: npt.NDArray[np.int64]  # per point, seconds since the epoch
    tag_bits: npt.NDArray[np.int64]  # per point, bit i set for TAGS[i]
    rows: list[dict[str, Any]] = field(default_factory=list)  # per document
    ids: list[str] = field(default_factory=list)  # per point

    def __len__(self) -> int:
        return len(self.vectors)


def load_corpus(folder: Path, encoder: Encoder) -> Corpus:
    titles, texts = [], []
    with (folder / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            titles.append(record["title"])
            texts.append(record["text"])
    slug = re.sub(r"[^a-z0-9]+", "-", Path(encoder.model_name).name.lower())
    cache = CACHE_DIR / f"{folder.name}-{slug.strip('-')}-fp32-corpus.npy"
    analyzer = Analyzer()
    terms = [analyzer.terms(f"{t} {x}") for t, x in zip(titles, texts, strict=True)]
    average = sum(map(len, terms)) / len(terms)
    sparse = [bm25.document_vector(t, average) for t in terms]
    if cache.exists():
        vectors = np.load(cache)
        if len(vectors) == len(texts):
            return Corpus(titles, texts, vectors, sparse)

    log.info("encoding %d abstracts once, into %s", len(texts), cache)
    combined = [(t + " " + x).strip() for t, x in zip(titles, texts, strict=True)]
    vectors = encoder.encode(combined, batch_size=32, precision="fp32")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, vectors.astype(np.float32))
    return Corpus(titles, texts, vectors, sparse)


def load_queries(folder: Path, count: int, encoder: Encoder, top_k: int) -> Queries:
    with (folder / "queries.jsonl").open(encoding="utf-8") as lines:
        texts = [json.loads(line)["text"] for line in lines][: count + WARMUP]
    vectors = encoder.encode(texts, precision="fp32")
    return Queries(
        texts[:count], vectors[:count], texts[count:], vectors[count:], top_k
    )


def make_collection(corpus: Corpus, size: int, rng: np.random.Generator) -> Collection:
    base = corpus.vectors
    sources = np.arange(size, dtype=np.int64) % len(base)
    vectors = rng.standard_normal((size, base.shape[1]), dtype=np.float32)
    vectors *= NOISE_SIGMA
    vectors += base[sources]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    # Payload fields that ingest takes from the document are drawn per document.
    documents = -(-size // CHUNKS_PER_DOCUMENT)
    doc_type = rng.integers(0, len(FILE_TYPES), documents)
    doc_date = DATE_START + rng.integers(0, DATE_SPAN_S, documents)
    doc_tags = np.zeros(documents, dtype=np.int64)
    for bit, odds in enumerate(TAG_ODDS.values()):
        doc_tags |= (rng.random(documents) < odds).astype(np.int64) << bit
    of_point = np.arange(size) // CHUNKS_PER_DOCUMENT
    coll = Collection(
        vectors, sources, doc_type[of_point], doc_date[of_point], doc_tags[of_point]
    )

    coll.rows = [document_row(coll, corpus, n) for n in range(documents)]
    for i in range(size):
        row = coll.rows[i // CHUNKS_PER_DOCUMENT]
        ordinal = i % CHUNKS_PER_DOCUMENT
        coll.ids.append(point_id(row["id"], row["active_version"], ordinal))
    return coll


def document_row(coll: Collection, corpus: Corpus, number: int) -> dict[str, Any]:
    """The catalog row of document ``number``, in the shape ingest writes it."""
    first = number * CHUNKS_PER_DOCUMENT
    stop = min(first + CHUNKS_PER_DOCUMENT, len(coll))
    file_type = FILE_TYPES[coll.file_type[first]]
    path = f"/bench/{file_type}/document-{number:06d}.{file_type}"
    version = hashlib.sha256(path.encode()).hexdigest()
    now = datetime.now(UTC)
    return {
        "id": repo.document_id_for(path),
        "source_path": path,
        "title": corpus.titles[coll.sources[first]],
        "file_type": file_type,
        "size_bytes": sum(len(corpus.texts[s]) for s in coll.sources[first:stop]),
        "modified_at": datetime.fromtimestamp(int(coll.date[first]), UTC),
        "content_hash": version,
        "tags": [t for i, t in enumerate(TAGS) if coll.tag_bits[first] >> i & 1],
        "status": DocumentStatus.INDEXED,
        "active_version": version,
        "chunk_count": stop - first,
        "indexed_at": now,
        "created_at": now,
        "updated_at": now,
    }


def make_points(coll: Collection, corpus: Corpus, start: int, stop: int) -> list[Point]:
    """Points ``start`` to ``stop``, with the payload ingest would write."""
    points = []
    for i in range(start, stop):
        row = coll.rows[i // CHUNKS_PER_DOCUMENT]
        ordinal = i % CHUNKS_PER_DOCUMENT
        text = corpus.texts[coll.sources[i]]
        offset = sum(len(corpus.texts[s]) for s in coll.sources[i - ordinal : i])
        payload = {
            "doc_id": row["id"],
            "version": row["active_version"],
            "ordinal": ordinal,
            "text": text,
            "title": row["title"],
            "path": row["source_path"],
            "path_prefixes": path_prefixes(row["source_path"]),
            "file_type": row["file_type"],
            "tags": row["tags"],
            "groups": [UNGROUPED],
            "date": int(coll.date[i]),
            "page": None,
            "char_start": offset,
            "char_end": offset + len(text),
        }
        sparse = corpus.sparse[coll.sources[i]]
        points.append(Point(coll.ids[i], coll.vectors[i], payload, sparse))
    return points


def mask_of(filter: Filter, coll: Collection) -> npt.NDArray[np.bool_]:
    """The points ``filter`` keeps, from the payload columns (the fields used here)."""
    if filter.must_not:
        raise ValueError("must_not is not evaluated by this benchmark")
    mask = np.ones(len(coll), dtype=bool)
    for c in filter.must:
        if c.key == "file_type" and isinstance(c, MatchAny):
            codes = [FILE_TYPES.index(str(v)) for v in c.values]
            mask &= np.isin(coll.file_type, codes)
        elif c.key == "tags" and isinstance(c, MatchAny | MatchAll):
            bits = sum(1 << TAGS.index(str(v)) for v in c.values)
            held = coll.tag_bits & bits
            mask &= held != 0 if isinstance(c, MatchAny) else held == bits
        elif c.key == "date" and isinstance(c, Range):
            if c.gte is not None:
                mask &= coll.date >= c.gte
            if c.lte is not None:
                mask &= coll.date <= c.lte
        elif c.key == "groups" and isinstance(c, MatchAny):
            mask &= UNGROUPED in c.values
        else:
            raise ValueError(f"no column for condition {c}")
    return mask


def brute_force(
    coll: Collection, query: npt.NDArray[np.float32], top_k: int, filter: Filter
) -> npt.NDArray[np.int64]:
    """Rows of the ``top_k`` best points, best first; filtered via a mask."""
    rows = np.flatnonzero(mask_of(filter, coll)) if filter else None
    scores = coll.vectors @ query if rows is None else coll.vectors[rows] @ query
    k = min(top_k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top])]
    return top if rows is None else rows[top]


def timed(
    call: Callable[[Any], Any], items: Iterable[Any], warmup: Iterable[Any]
) -> tuple[npt.NDArray[np.float64], list[Any]]:
    """Milliseconds per call over ``items`` (after ``warmup``), and the results."""
    for item in warmup:
        call(item)
    times, results = [], []
    for item in items:
        started = time.perf_counter()
        results.append(call(item))
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000, results


def quantiles(ms: npt.NDArray[np.float64]) -> dict[str, float]:
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95))}


def recall(found: list[list[int]], truth: list[npt.NDArray[np.int64]]) -> float:
    shares = [
        len(set(f) & set(t.tolist())) / len(t)
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(shares))


def hybrid_store(
    store: EdgeStore,
    name: str,
    queries: Queries,
    filters: dict[str, Filter],
    per_filter: dict[str, dict[str, Any]],
) -> None:
    """The store's hybrid query (dense + BM25 prefetches, fused), per filter."""
    analyzer = Analyzer()
    sparse = [bm25.query_vector(analyzer.terms(t)) for t in queries.texts]
    warm = [bm25.query_vector(analyzer.terms(t)) for t in queries.warm_texts]
    for fname, flt in filters.items():

        def hybrid(pair: tuple[Any, SparseVector], flt: Filter = flt) -> Any:
            return store.search_hybrid(
                name,
                pair[0],
                pair[1],
                queries.top_k,
                flt,
                fusion=DEFAULT_FUSION,
                prefetch=HYBRID_PREFETCH,
            )

        ms, _ = timed(
            hybrid,
            list(zip(queries.vectors, sparse, strict=True)),
            list(zip(queries.warm_vectors, warm, strict=True)),
        )
        per_filter[fname]["store_hybrid"] = quantiles(ms)


def ef_sweep(
    store: EdgeStore,
    name: str,
    queries: Queries,
    filters: dict[str, Filter],
    truth: dict[str, list[npt.NDArray[np.int64]]],
    index: dict[str, int],
    efs: list[int],
) -> dict[str, dict[str, Any]]:
    """Store latency and recall@10 at each HNSW ef, on the index just built."""
    chosen = (store.hnsw_ef, store.hnsw_ef_filtered)
    out: dict[str, dict[str, Any]] = {}
    try:
        for ef in efs:
            store.hnsw_ef = store.hnsw_ef_filtered = ef
            for fname, flt in filters.items():
                search = partial(store.search, name, top_k=queries.top_k, filter=flt)
                ms, pages = timed(search, queries.vectors, queries.warm_vectors)
                found = [[index[hit.id] for hit in page] for page in pages]
                out.setdefault(str(ef), {})[fname] = {
                    **quantiles(ms),
                    "recall": recall(found, truth[fname]),
                }
    finally:
        store.hnsw_ef, store.hnsw_ef_filtered = chosen
    return out


def run_size(
    size: int,
    corpus: Corpus,
    encoder: Encoder,
    queries: Queries,
    data_dir: Path,
    efs: list[int],
) -> dict[str, Any]:
    """Build one collection of ``size`` points and time every query path on it."""
    coll = make_collection(corpus, size, np.random.default_rng(size))
    cos = np.einsum("ij,ij->i", coll.vectors, corpus.vectors[coll.sources])
    result: dict[str, Any] = {
        "documents": len(coll.rows),
        "cos_to_source": float(cos.mean()),
    }
    # What an anonymous user may read: every document here has no groups.
    anonymous = AccessPolicy().access(None)
    filters = {name: build_filter(f, anonymous) for name, f in FILTERS.items()}

    # Brute force first: its exact hits are the truth for recall.
    per_filter: dict[str, dict[str, Any]] = {}
    truth = {}
    for fname, flt in filters.items():
        row = per_filter[fname] = {"matching": int(mask_of(flt, coll).sum())}
        exact = partial(brute_force, coll, top_k=queries.top_k, filter=flt)
        for threads in (None, 1):
            with threadpool_limits(limits=threads, user_api="blas"):
                ms, truth[fname] = timed(exact, queries.vectors, queries.warm_vectors)
            row[f"brute_{threads or 'default'}"] = quantiles(ms)

    started = time.perf_counter()
    settings = Settings(data_dir=data_dir, database_url=None)
    engine = open_catalog(settings)
    with Session(engine) as session:
        session.execute(insert(Document), coll.rows)
        session.commit()
    result["catalog_s"] = time.perf_counter() - started

    name = collection_name(MODEL)
    store = load_store(settings.store_dir, name, coll, corpus, result)
    index = {point: i for i, point in enumerate(coll.ids)}
    try:
        for label in ("exact", "hnsw"):
            if label == "hnsw":
                log.info("%d points: building the HNSW index", size)
                started = time.perf_counter()
                store.optimize(name, wait=True)
                result["optimize_s"] = time.perf_counter() - started
                result["indexed"] = store.is_indexed(name)
                # The new index's pages are cold after the swap; a running
                # server's are not. One untimed pass per filter warms them
                # (measured cold, unfiltered p95 was 3.3-4.3 ms, warm 1.0-1.8).
                for flt in filters.values():
                    for vector in queries.vectors:
                        store.search(name, vector, queries.top_k, flt)
            for fname, flt in filters.items():
                search = partial(store.search, name, top_k=queries.top_k, filter=flt)
                ms, pages = timed(search, queries.vectors, queries.warm_vectors)
                found = [[index[hit.id] for hit in page] for page in pages]
                per_filter[fname][f"store_{label}"] = quantiles(ms)
                per_filter[fname][f"recall_{label}"] = recall(found, truth[fname])
            if label == "hnsw":
                hybrid_store(store, name, queries, filters, per_filter)
        result["ef_sweep"] = ef_sweep(store, name, queries, filters, truth, index, efs)
        known = cast("Encoder", KnownEmbeddings(queries))
        searchers = (
            Searcher(encoder, store, engine, name),
            Searcher(known, store, engine, name),
        )
        end_to_end(searchers, queries, per_filter)
    finally:
        store.close()
        engine.dispose()
    result["filters"] = per_filter
    return result


def load_store(
    root: Path, name: str, coll: Collection, corpus: Corpus, result: dict[str, Any]
) -> EdgeStore:
    """The loaded collection, in a store that builds an index only when told."""
    # Made at the default threshold, which also fixes the exact-search cut-off.
    creator = EdgeStore(root)
    spec = CollectionSpec(
        dimension=coll.vectors.shape[1], indexes=INDEXED_FIELDS, sparse=True
    )
    creator.create_collection(name, spec)
    creator.close()

    store = EdgeStore(root, hnsw_threshold=2**62)
    upsert_s = 0.0
    for start in range(0, len(coll), UPSERT_BATCH):
        points = make_points(coll, corpus, start, min(start + UPSERT_BATCH, len(coll)))
        started = time.perf_counter()
        store.upsert(name, points)
        upsert_s += time.perf_counter() - started
    result["upsert_s"] = upsert_s
    return store


class KnownEmbeddings:
    """Stands in for the encoder: the embeddings of the benchmark's queries."""

    def __init__(self, queries: Queries) -> None:
        texts = queries.texts + queries.warm_texts
        vectors = np.concatenate([queries.vectors, queries.warm_vectors])
        self._vectors: dict[str, npt.NDArray[np.float32]] = dict(
            zip(texts, vectors, strict=True)
        )

    def encode(self, text: str) -> npt.NDArray[np.float32]:
        return self._vectors[text]


def end_to_end(
    searchers: tuple[Searcher, Searcher],
    queries: Queries,
    per_filter: dict[str, dict[str, Any]],
) -> None:
    """Searcher.search per filter, with and without encoding the query.

    At torch's default thread count; the full path without a filter also at
    one thread.
    """
    default_threads = torch.get_num_threads()
    # Without encoding first: it warms the catalog pages a search joins with, so
    # that both sides are timed in the steady state of a running server.
    keys = ("join", "e2e", "join_hybrid", "e2e_hybrid")
    runs = [(f, key, default_threads) for f in FILTERS for key in keys]
    if default_threads != 1:
        runs.append(("none", "e2e_torch_1", 1))
    for fname, key, threads in runs:
        searcher = searchers[key.startswith("join")]
        mode = "hybrid" if key.endswith("hybrid") else "dense"
        search = partial(
            searcher.search, top_k=queries.top_k, filters=FILTERS[fname], mode=mode
        )
        torch.set_num_threads(threads)
        try:
            ms, pages = timed(search, queries.texts, queries.warm_texts)
        finally:
            torch.set_num_threads(default_threads)
        per_filter[fname][key] = quantiles(ms)
        # A short page would mean the catalog join dropped hits.
        short = sum(len(page) < queries.top_k for page in pages)
        per_filter[fname][f"{key}_short_pages"] = short


def encode_threads(encoder: Encoder, queries: Queries) -> dict[str, Any]:
    """Query encoding alone at torch's default thread count and at one thread."""
    default_threads = torch.get_num_threads()
    out = {}
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        try:
            ms, _ = timed(encoder.encode, queries.texts, queries.warm_texts)
        finally:
            torch.set_num_threads(default_threads)
        out[str(threads)] = quantiles(ms)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000,200000", help="points, with commas")
    parser.add_argument("--queries", type=int, default=300, help="timed queries")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument("--keep", action="store_true", help="keep the data dirs")
    parser.add_argument(
        "--ef-sweep",
        default="64,128,192,256,384",
        help="HNSW ef values to time after the main run, with commas ('' for none)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.setLevel(logging.INFO)
    logging.getLogger("search.stores.edge").setLevel(logging.INFO)
    sizes = [int(s) for s in args.sizes.split(",")]

    # Points and the queries' exact truth are fp32 embeddings; searches encode
    # their queries as the product does, at the precision "auto" picks here.
    encoder = Encoder(MODEL, precision="auto")
    corpus = load_corpus(args.dataset, encoder)
    queries = load_queries(args.dataset, args.queries, encoder, args.top_k)
    efs = [int(e) for e in args.ef_sweep.split(",") if e.strip()]
    pools = [
        {k: p[k] for k in ("user_api", "internal_api", "num_threads", "prefix")}
        for p in threadpool_info()
    ]
    results: dict[str, Any] = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "thread_pools": pools,
            "query_precision": encoder.precision,
            "load_before": os.getloadavg(),
        },
        "params": {
            "queries": len(queries.texts),
            "top_k": args.top_k,
            "noise_sigma": NOISE_SIGMA,
            "chunks_per_document": CHUNKS_PER_DOCUMENT,
            "filters": {name: repr(f) for name, f in FILTERS.items()},
        },
        "encode_ms_by_torch_threads": encode_threads(encoder, queries),
        "sizes": {},
    }

    root = Path(tempfile.mkdtemp(prefix="semsearch-bench-query-"))
    try:
        for size in sizes:
            log.info("%d points", size)
            data_dir = root / str(size)
            result = run_size(size, corpus, encoder, queries, data_dir, efs)
            results["sizes"][str(size)] = result
            if not args.keep:
                shutil.rmtree(data_dir, ignore_errors=True)
    finally:
        if args.keep:
            log.info("data dirs kept under %s", root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    results["machine"]["load_after"] = os.getloadavg()
    results["targets"] = check_targets(results["sizes"][str(max(sizes))], max(sizes))

    print_tables(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


def check_targets(result: dict[str, Any], size: int) -> list[dict[str, Any]]:
    checks = []
    for fname, row in result["filters"].items():
        brute = min(row["brute_default"]["p95"], row["brute_1"]["p95"])
        store, e2e, rec = (
            row["store_hnsw"]["p95"],
            row["e2e"]["p95"],
            row["recall_hnsw"],
        )
        lines = [
            (
                f"store p95 {store:.2f} ms <= brute p95 / {TARGET_RATIO:g} "
                f"= {brute / TARGET_RATIO:.2f} ms",
                store <= brute / TARGET_RATIO,
            ),
            (f"recall@10 {rec:.4f} >= {TARGET_RECALL}", rec >= TARGET_RECALL),
            (
                f"end-to-end p95 {e2e:.2f} ms <= {TARGET_E2E_MS:g} ms",
                e2e <= TARGET_E2E_MS,
            ),
        ]
        hybrid = row["e2e_hybrid"]["p95"]
        lines.append(
            (
                f"hybrid end-to-end p95 {hybrid:.2f} ms <= 2 x dense {e2e:.2f} ms",
                hybrid <= 2 * e2e,
            )
        )
        for text, ok in lines:
            checks.append({"size": size, "filter": fname, "check": text, "pass": ok})
    return checks


def print_tables(results: dict[str, Any]) -> None:
    machine, params = results["machine"], results["params"]
    print(
        f"# {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
        f"({machine['torch_threads']} threads), load {machine['load_before'][0]:.1f} "
        f"before / {machine['load_after'][0]:.1f} after; {params['queries']} queries, "
        f"top_k {params['top_k']}; times in ms, p50 / p95"
    )
    print()
    print(
        "| points | filter | matching | store exact | store HNSW | end to end "
        "| end to end, encode excluded | brute BLAS default | brute BLAS 1 thr "
        "| recall@10 exact / HNSW |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")

    def pair(q: dict[str, float]) -> str:
        return f"{q['p50']:.2f} / {q['p95']:.2f}"

    for size, result in results["sizes"].items():
        for fname, row in result["filters"].items():
            print(
                f"| {int(size):,} | {fname} | {row['matching']:,} "
                f"| {pair(row['store_exact'])} | {pair(row['store_hnsw'])} "
                f"| {pair(row['e2e'])} | {pair(row['join'])} "
                f"| {pair(row['brute_default'])} "
                f"| {pair(row['brute_1'])} "
                f"| {row['recall_exact']:.4f} / {row['recall_hnsw']:.4f} |"
            )
    print()
    print(
        "| points | documents | cos to source | upsert s (points/s) | optimize s "
        "| catalog s |"
    )
    print("|---|---|---|---|---|---|")
    for size, r in results["sizes"].items():
        rate = int(size) / r["upsert_s"]
        print(
            f"| {int(size):,} | {r['documents']:,} | {r['cos_to_source']:.4f} "
            f"| {r['upsert_s']:.1f} ({rate:,.0f}) | {r['optimize_s']:.1f} "
            f"| {r['catalog_s']:.1f} |"
        )
    print()
    print(
        "| torch threads | encode query | "
        + " | ".join(f"end to end, {int(s):,}, no filter" for s in results["sizes"])
        + " |"
    )
    print("|---|---|" + "---|" * len(results["sizes"]))
    for threads, q in results["encode_ms_by_torch_threads"].items():
        cells = []
        for r in results["sizes"].values():
            row = r["filters"]["none"]
            default = threads == str(results["machine"]["torch_threads"])
            cells.append(pair(row["e2e" if default else "e2e_torch_1"]))
        print(f"| {threads} | {pair(q)} | " + " | ".join(cells) + " |")
    print()
    print(
        "| points | filter | store dense | store hybrid | end to end dense "
        "| end to end hybrid | hybrid, encode excluded |"
    )
    print("|---|---|---|---|---|---|---|")
    for size, result in results["sizes"].items():
        for fname, row in result["filters"].items():
            print(
                f"| {int(size):,} | {fname} | {pair(row['store_hnsw'])} "
                f"| {pair(row['store_hybrid'])} | {pair(row['e2e'])} "
                f"| {pair(row['e2e_hybrid'])} | {pair(row['join_hybrid'])} |"
            )
    print()
    sweeps = {
        s: r["ef_sweep"] for s, r in results["sizes"].items() if r.get("ef_sweep")
    }
    for size, sweep in sweeps.items():
        names = list(next(iter(sweep.values())))
        print(
            f"| ef ({int(size):,} points) | "
            + " | ".join(f"{n}: p50 / p95, recall@10" for n in names)
            + " |"
        )
        print("|---|" + "---|" * len(names))
        for ef, rows in sweep.items():
            cells = [f"{pair(rows[n])}, {rows[n]['recall']:.4f}" for n in names]
            print(f"| {ef} | " + " | ".join(cells) + " |")
        print()
    for check in results["targets"]:
        verdict = "PASS" if check["pass"] else "FAIL"
        print(f"{verdict}  {check['size']:,} {check['filter']}: {check['check']}")


if __name__ == "__main__":
    main()
