"""Ranking metrics over plain dicts, as TREC tools define them.

``qrels`` maps a query id to ``{doc_id: gain}`` (gains above 1 are graded
relevance; 0 or less is not relevant); ``run`` maps a query id to
``{doc_id: score}``. Ties in score are broken by doc id, descending, as
trec_eval does. Queries without any relevant document are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Doc ids best first, ties broken by doc id descending (trec_eval's order)."""
    return [
        d for d, _ in sorted(scores.items(), key=lambda x: (x[1], x[0]), reverse=True)
    ]


def ndcg_at_k(qrels: Qrels, run: Run, k: int = 10) -> float:
    """Mean nDCG@k with linear gains and log2(rank + 1) discounts."""
    per_query = []
    for query_id, judged in qrels.items():
        gains = sorted((g for g in judged.values() if g > 0), reverse=True)
        if not gains:
            continue
        ideal = sum(g / math.log2(rank + 2) for rank, g in enumerate(gains[:k]))
        top = ranked(run.get(query_id, {}))[:k]
        dcg = sum(
            max(judged.get(doc_id, 0), 0) / math.log2(rank + 2)
            for rank, doc_id in enumerate(top)
        )
        per_query.append(dcg / ideal)
    return sum(per_query) / len(per_query) if per_query else 0.0


def mrr_at_k(qrels: Qrels, run: Run, k: int = 10) -> float:
    """Mean reciprocal rank of the first relevant document in the top ``k``."""
    per_query = []
    for query_id, judged in _judged(qrels):
        top = ranked(run.get(query_id, {}))[:k]
        first = next((r for r, d in enumerate(top) if judged.get(d, 0) > 0), None)
        per_query.append(0.0 if first is None else 1 / (first + 1))
    return _mean(per_query)


def recall_at_k(qrels: Qrels, run: Run, k: int = 100) -> float:
    """Mean share of each query's relevant documents found in its top ``k``."""
    per_query = []
    for query_id, judged in _judged(qrels):
        relevant = {d for d, g in judged.items() if g > 0}
        top = set(ranked(run.get(query_id, {}))[:k])
        per_query.append(len(relevant & top) / len(relevant))
    return _mean(per_query)


def average_precision(qrels: Qrels, run: Run) -> float:
    """MAP: mean over queries of precision at each relevant document's rank,
    over the whole run given, divided by the number of relevant documents."""
    per_query = []
    for query_id, judged in _judged(qrels):
        relevant = {d for d, g in judged.items() if g > 0}
        found, total = 0, 0.0
        for rank, doc_id in enumerate(ranked(run.get(query_id, {})), start=1):
            if doc_id in relevant:
                found += 1
                total += found / rank
        per_query.append(total / len(relevant))
    return _mean(per_query)


def _judged(qrels: Qrels) -> list[tuple[str, Mapping[str, int]]]:
    return [(q, j) for q, j in qrels.items() if any(g > 0 for g in j.values())]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
