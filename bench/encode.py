"""Our encoder against SentenceTransformer.encode: throughput, fidelity, quality.

Same model, same process, same batch size, two SciFact workloads:
documents (title + text; most fill the 256-token window) and queries (short
claims). For each workload and precision it prints items/s, the ratio to
sentence-transformers, max(1 - cos) against sentence-transformers' embeddings
and where our time went; for documents also nDCG@10 on the test split with
exact top-k, to show what reduced precision costs.

    .venv/bin/python bench/encode.py                 # the whole corpus
    .venv/bin/python bench/encode.py --docs 500      # a quick look

On a CPU without native bf16 (no AMX / AVX512-BF16) bf16 is emulated and
several times slower than fp32; it is then measured on a sample only, and its
nDCG is not computed. Run it unchanged on a CUDA machine to get GPU figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from search import Encoder, EncodeStats, semantic_search
from search.device import cpu_has_native_bf16
from search.metrics import ndcg_at_k

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "datasets" / "scifact"
EMULATED_BF16_SAMPLE = {"documents": 256, "queries": 512}


def load_scifact(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, Any]]:
    docs = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            docs[record["_id"]] = (record["title"] + " " + record["text"]).strip()
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            queries[record["_id"]] = record["text"]
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / "test.tsv").open(encoding="utf-8") as lines:
        next(lines)
        for line in lines:
            query_id, doc_id, score = line.split("\t")
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    return docs, queries, qrels


def timed(function: Any, texts: list[str], repeats: int) -> tuple[np.ndarray, float]:
    """Embeddings and the best wall time of ``repeats`` runs."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function(texts)
        best = min(best, time.perf_counter() - started)
    return np.asarray(result, dtype=np.float32), best


def max_cos_distance(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.max(1.0 - np.sum(a * b, axis=1)))


def ndcg_of(
    doc_ids: list[str],
    doc_emb: np.ndarray,
    query_ids: list[str],
    query_emb: np.ndarray,
    qrels: dict[str, Any],
) -> float:
    hits = semantic_search(query_emb, doc_emb, top_k=10)
    run = {
        query_id: {doc_ids[h["corpus_id"]]: h["score"] for h in query_hits}
        for query_id, query_hits in zip(query_ids, hits, strict=True)
    }
    return ndcg_at_k(qrels, run, k=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--docs", type=int, default=None, help="first N documents")
    parser.add_argument("--queries", type=int, default=None, help="first N queries")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--repeats", type=int, default=1, help="best of N timings")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    parser.add_argument(
        "--full-emulated-bf16",
        action="store_true",
        help="run emulated bf16 on every item too (slow), to get its nDCG",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    from sentence_transformers import SentenceTransformer

    docs, queries, qrels = load_scifact(args.dataset)
    encoder = Encoder(args.model, device=args.device, precision="fp32")
    reference = SentenceTransformer(str(encoder.path), device=str(encoder.device))
    native_bf16 = encoder.device.type == "cuda" or cpu_has_native_bf16()
    precisions = args.precisions.split(",")

    doc_ids = list(docs)[: args.docs]
    query_ids = list(queries)[: args.queries]
    workloads = {
        "documents": [docs[i] for i in doc_ids],
        "queries": [queries[i] for i in query_ids],
    }
    test_ids = [q for q in query_ids if q in qrels]
    test_rows = [query_ids.index(q) for q in test_ids]
    scored_qrels = {q: qrels[q] for q in test_ids}
    full_corpus = args.docs is None

    def st_encode(texts: list[str]) -> Any:
        return reference.encode(
            texts, batch_size=args.batch_size, normalize_embeddings=True
        )

    print(
        f"# {platform.processor() or platform.machine()}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, device "
        f"{encoder.device}, native bf16: {native_bf16}"
    )
    results: dict[str, Any] = {"native_bf16": native_bf16, "workloads": {}}
    embeddings: dict[tuple[str, str], np.ndarray] = {}
    for workload, texts in workloads.items():
        # Warm both up so that one-time costs (allocations, kernels) don't count.
        st_encode(texts[:64])
        encoder.encode(texts[:64], batch_size=args.batch_size)
        ref_emb, ref_s = timed(st_encode, texts, args.repeats)
        embeddings[(workload, "st")] = ref_emb
        rows = {"sentence-transformers": {"items_per_s": len(texts) / ref_s}}

        for precision in precisions:
            sample = texts
            if precision != "fp32" and not native_bf16 and not args.full_emulated_bf16:
                sample = texts[: EMULATED_BF16_SAMPLE[workload]]
            stats = EncodeStats()
            encoder.encode(sample[:32], precision=precision)

            def ours(t: list[str], p: str = precision, s: EncodeStats = stats) -> Any:
                return encoder.encode(
                    t, batch_size=args.batch_size, precision=p, stats=s
                )

            emb, our_s = timed(ours, sample, args.repeats)
            ref_s_sample = ref_s * len(sample) / len(texts)
            if len(sample) == len(texts):
                embeddings[(workload, precision)] = emb
            rows[precision] = {
                "items": len(sample),
                "items_per_s": len(sample) / our_s,
                "ratio": ref_s_sample / our_s,
                "max_1_minus_cos": max_cos_distance(emb, ref_emb[: len(sample)]),
                "time_split": {
                    "tokenize": stats.tokenize_s / args.repeats,
                    "forward": stats.forward_s / args.repeats,
                    "pool": stats.pool_s / args.repeats,
                },
                "padding_overhead": stats.padded_tokens / max(stats.tokens, 1) - 1,
            }
        results["workloads"][workload] = rows

    if full_corpus and test_ids:
        quality = {}
        for name in ["st", *precisions]:
            if ("documents", name) in embeddings and ("queries", name) in embeddings:
                quality[name] = ndcg_of(
                    doc_ids,
                    embeddings[("documents", name)],
                    test_ids,
                    embeddings[("queries", name)][test_rows],
                    scored_qrels,
                )
        results["ndcg@10_test"] = quality

    print_table(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


def print_table(results: dict[str, Any]) -> None:
    print(
        "| workload | impl | items | items/s | ratio | max(1-cos) "
        "| tokenize / forward / pool s | padding |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for workload, rows in results["workloads"].items():
        for impl, row in rows.items():
            if impl == "sentence-transformers":
                print(
                    f"| {workload} | {impl} | | {row['items_per_s']:.1f} | 1.00 | | | |"
                )
                continue
            split = row["time_split"]
            print(
                f"| {workload} | ours {impl} | {row['items']} | "
                f"{row['items_per_s']:.1f} | {row['ratio']:.2f} | "
                f"{row['max_1_minus_cos']:.1e} | {split['tokenize']:.2f} / "
                f"{split['forward']:.2f} / {split['pool']:.2f} | "
                f"{row['padding_overhead']:.1%} |"
            )
    if "ndcg@10_test" in results:
        print()
        for name, value in results["ndcg@10_test"].items():
            print(f"nDCG@10 test, {name}: {value:.4f}")


if __name__ == "__main__":
    main()
