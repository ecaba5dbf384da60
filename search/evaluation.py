"""Ranking quality on a BEIR-format collection: index it, query it, score it.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``),
``queries.jsonl`` (``_id``, ``text``) and ``qrels/<split>.tsv`` (query id,
corpus id, gain; a header line). Each record becomes one document, its title
and text chunked, embedded and weighted exactly as ingest does it, in a
collection of its own (``eval-<folder>-<model>-v<format>``) in the configured
store. Embeddings go through the catalog's embedding cache, and a manifest in
the data dir records what was indexed, so a rerun reuses both.

Queries are run at document level: a document scores as its best chunk, and
the first ``depth`` documents form the run that the metrics (search.metrics,
tested against trec_eval) score. Latency is per query, end to end: encoding,
the store query, and the grouping into documents.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from search import bm25
from search.analysis import Analyzer
from search.app import INDEX_FORMAT, App, collection_name, slug
from search.chunking import chunk_spans
from search.embedding_cache import embed_cached, text_hash
from search.errors import InvalidInputError
from search.metrics import average_precision, mrr_at_k, ndcg_at_k, recall_at_k
from search.retrieval import Ranking, fetcher
from search.stores.base import CollectionSpec, FieldType, Point

if TYPE_CHECKING:
    from search.encoder import Encoder

logger = logging.getLogger(__name__)

DEPTH = 100
# Chunks fetched per query: enough for DEPTH documents of a few chunks each.
CHUNKS_PER_QUERY = 400
UPSERT_BATCH = 1024
ENCODE_BATCH = 2048
_POINT_NAMESPACE = uuid.UUID("1b0d9a40-3c5e-4f8e-9d61-2f6a8c0e7b15")


@dataclass(frozen=True)
class BeirData:
    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass(frozen=True)
class EvalResult:
    mode: str
    docs: int
    queries: int
    metrics: dict[str, float]
    latency_ms_p50: float
    latency_ms_p95: float

    def as_dict(self) -> dict[str, Any]:
        return {
            **{k: round(v, 4) for k, v in self.metrics.items()},
            "latency_ms_p50": round(self.latency_ms_p50, 2),
            "latency_ms_p95": round(self.latency_ms_p95, 2),
            "mode": self.mode,
            "docs": self.docs,
            "queries": self.queries,
        }


def load_beir(folder: Path, split: str = "test") -> BeirData:
    """Read a BEIR folder; the queries kept are those judged in ``split``."""
    folder = Path(folder)
    files = {
        "corpus": folder / "corpus.jsonl",
        "queries": folder / "queries.jsonl",
        "qrels": folder / "qrels" / f"{split}.tsv",
    }
    for what, path in files.items():
        if not path.is_file():
            hint = f" (splits here: {_splits(folder)})" if what == "qrels" else ""
            raise InvalidInputError(f"{folder} is not a BEIR folder: no {path}{hint}")
    corpus = {
        str(record["_id"]): _document_text(record) for record in _jsonl(files["corpus"])
    }
    qrels: dict[str, dict[str, int]] = {}
    with files["qrels"].open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.rstrip("\n").split("\t")
            if number == 1 and not fields[-1].lstrip("-").isdigit():
                continue  # the header
            if len(fields) < 3:
                raise InvalidInputError(
                    f"{files['qrels']}:{number}: expected 3 columns"
                )
            qrels.setdefault(fields[0], {})[fields[1]] = int(fields[-1])
    queries = {
        str(record["_id"]): str(record["text"])
        for record in _jsonl(files["queries"])
        if str(record["_id"]) in qrels
    }
    return BeirData(folder.resolve().name, corpus, queries, qrels)


def _document_text(record: dict[str, Any]) -> str:
    title = str(record.get("title") or "").strip()
    text = str(record.get("text") or "").strip()
    return f"{title}\n\n{text}" if title and text else title or text


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"{path}:{number}: {exc.msg}") from None


def _splits(folder: Path) -> str:
    names = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
    return ", ".join(names) or "none"


class Evaluator:
    """Indexes one BEIR collection for an App's model and runs its queries."""

    def __init__(
        self,
        app: App,
        data: BeirData,
        whole_documents: bool = False,
        encoder: Encoder | None = None,
    ) -> None:
        """``whole_documents``: one point per record, its text cut at the model's
        limit, as BEIR's own evaluations do, instead of ingest's chunks.
        ``encoder``: the model to evaluate (default: the index's)."""
        self.app = app
        self.data = data
        self.whole_documents = whole_documents
        self.encoder = encoder or app.encoder
        name = slug(data.name) or "beir"
        if whole_documents:
            name += "-whole"
        model = collection_name(self.encoder.identity).removeprefix("chunks-")
        self.collection = f"eval-{name}-{model}"
        self.analyzer = Analyzer(app.settings.language)

    @property
    def manifest_path(self) -> Path:
        return self.app.settings.data_dir / "eval" / f"{self.collection}.json"

    def ensure_index(
        self, progress: Callable[[str], None] | None = None
    ) -> dict[str, Any]:
        """Index the corpus unless the manifest says it is there already."""
        manifest = self._manifest()
        store = self.app.store
        stored = self._read_manifest()
        if (
            stored is not None
            and {**stored, "chunks": None} == manifest
            and store.collection_exists(self.collection)
            and store.count(self.collection) == stored["chunks"]
        ):
            return {**stored, "rebuilt": False}
        started = time.perf_counter()
        store.delete_collection(self.collection)
        chunks = self._chunks()
        encoder = self.encoder
        store.create_collection(
            self.collection,
            CollectionSpec(
                encoder.dimension, {"doc_id": FieldType.KEYWORD}, sparse=True
            ),
        )
        terms = [self.analyzer.terms(text) for _, _, text in chunks]
        average = max(1.0, sum(map(len, terms)) / max(len(terms), 1))
        encoded = reused = 0
        for start in range(0, len(chunks), ENCODE_BATCH):
            batch = chunks[start : start + ENCODE_BATCH]
            vectors, fresh = self._embeddings([text for _, _, text in batch])
            encoded, reused = encoded + fresh, reused + len(batch) - fresh
            points = [
                Point(
                    str(uuid.uuid5(_POINT_NAMESPACE, f"{doc_id}:{ordinal}")),
                    vector,
                    {"doc_id": doc_id, "ordinal": ordinal},
                    bm25.document_vector(chunk_terms, average),
                )
                for (doc_id, ordinal, _), vector, chunk_terms in zip(
                    batch, vectors, terms[start : start + ENCODE_BATCH], strict=True
                )
            ]
            for offset in range(0, len(points), UPSERT_BATCH):
                store.upsert(self.collection, points[offset : offset + UPSERT_BATCH])
            if progress:
                progress(
                    f"{min(start + ENCODE_BATCH, len(chunks))} of {len(chunks)} chunks"
                )
        self._write_manifest(manifest | {"chunks": len(chunks)})
        return {
            **manifest,
            "chunks": len(chunks),
            "encoded": encoded,
            "reused": reused,
            "seconds": round(time.perf_counter() - started, 1),
            "rebuilt": True,
        }

    def run(self, ranking: Ranking, depth: int = DEPTH) -> EvalResult:
        """Every judged query, at document level; metrics and latency."""
        run: dict[str, dict[str, float]] = {}
        times = []
        for query_id, text in self.data.queries.items():
            started = time.perf_counter()
            run[query_id] = self.documents(text, ranking, depth)
            times.append(time.perf_counter() - started)
        qrels = self.data.qrels
        metrics = {
            "ndcg@10": ndcg_at_k(qrels, run, 10),
            "mrr@10": mrr_at_k(qrels, run, 10),
            "recall@100": recall_at_k(qrels, run, 100),
            "map": average_precision(qrels, run),
        }
        ms = np.array(times) * 1000 if times else np.zeros(1)
        return EvalResult(
            ranking.mode.value,
            len(self.data.corpus),
            len(self.data.queries),
            metrics,
            float(np.percentile(ms, 50)),
            float(np.percentile(ms, 95)),
        )

    def documents(self, query: str, ranking: Ranking, depth: int) -> dict[str, float]:
        """The first ``depth`` documents for ``query``, scored by their best chunk."""
        fetch = fetcher(
            self.app.store,
            self.collection,
            self.analyzer,
            self._encode_query,
            query,
            ranking,
        )
        if fetch is None:
            return {}
        scores: dict[str, float] = {}
        for point in fetch(CHUNKS_PER_QUERY):
            doc_id = str(point.payload["doc_id"])
            if doc_id not in scores:
                if len(scores) == depth:
                    break
                scores[doc_id] = point.score
        return scores

    def _encode_query(self, text: str) -> npt.NDArray[np.float32]:
        # Encoded anew for every mode, so that each mode's latency is its own.
        return self.encoder.encode(text)

    def _chunks(self) -> list[tuple[str, int, str]]:
        if self.whole_documents:
            return [(doc_id, 0, text) for doc_id, text in self.data.corpus.items()]
        chunks = []
        for doc_id, text in self.data.corpus.items():
            offsets = self.encoder.token_offsets(text)
            spans = chunk_spans(text, offsets, *self.app.chunk_sizes_for(self.encoder))
            for ordinal, span in enumerate(spans):
                chunks.append((doc_id, ordinal, text[span.start : span.end]))
        return chunks

    def _embeddings(
        self, texts: list[str]
    ) -> tuple[list[npt.NDArray[np.float32]], int]:
        """Embeddings of ``texts`` (cache first) and how many were encoded."""
        hashes = [text_hash(t) for t in texts]
        vectors, encoded = embed_cached(self.app.engine, self.encoder, hashes, texts)
        return [vectors[h] for h in hashes], encoded

    def _manifest(self) -> dict[str, Any]:
        s = self.app.settings
        digest = hashlib.sha256()
        for doc_id, text in self.data.corpus.items():
            digest.update(f"{doc_id}\0{text}\0".encode())
        return {
            "corpus_sha256": digest.hexdigest(),
            "model": self.encoder.identity,
            "precision": self.encoder.precision,
            "chunk_tokens": s.chunk_tokens,
            "chunk_overlap": s.chunk_overlap,
            "language": s.language,
            "index_format": INDEX_FORMAT,
            "whole_documents": self.whole_documents,
            "chunks": None,
        }

    def _read_manifest(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.manifest_path.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return data

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        self.manifest_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.manifest_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        temporary.replace(self.manifest_path)
