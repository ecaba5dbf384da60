"""nDCG@k against a hand-computed example and against trec_eval (pytrec_eval)."""

from __future__ import annotations

import math
import random

import pytest
import pytrec_eval

from search.metrics import average_precision, mrr_at_k, ndcg_at_k, ranked, recall_at_k


def test_hand_computed_example() -> None:
    qrels = {"q1": {"a": 1, "b": 2}, "q2": {"c": 1}, "q3": {"x": 0}}
    run = {"q1": {"b": 0.1, "z": 0.9, "a": 0.5}, "q2": {"c": 1.0}, "q3": {"x": 1.0}}
    # q1 ranks z, a, b: DCG = 1/log2(3) + 2/log2(4); ideal = 2 + 1/log2(3).
    q1 = (1 / math.log2(3) + 2 / 2) / (2 + 1 / math.log2(3))
    # q3 has no relevant document and is left out, as trec_eval does.
    assert ndcg_at_k(qrels, run, k=10) == pytest.approx((q1 + 1.0) / 2)


def test_cutoff_and_missing_run() -> None:
    qrels = {"q1": {"a": 1}}
    assert ndcg_at_k(qrels, {"q1": {"b": 2.0, "a": 1.0}}, k=1) == 0.0
    assert ndcg_at_k(qrels, {}, k=10) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_trec_eval(seed: int) -> None:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels = {
        f"q{q}": {
            d: rng.choice([1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 6))
        }
        for q in range(30)
    }
    # Rounded scores make ties, which both must break the same way.
    run = {q: {d: round(rng.random(), 1) for d in rng.sample(docs, 25)} for q in qrels}

    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"})
    per_query = evaluator.evaluate(run)
    expected = sum(v["ndcg_cut_10"] for v in per_query.values()) / len(per_query)
    assert ndcg_at_k(qrels, run, k=10) == pytest.approx(expected, abs=1e-9)


def _random_case(
    seed: int,
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(200)]
    qrels = {
        f"q{q}": {
            d: rng.choice([0, 1, 1, 2]) for d in rng.sample(docs, rng.randint(1, 8))
        }
        for q in range(40)
    }
    run = {q: {d: round(rng.random(), 2) for d in rng.sample(docs, 120)} for q in qrels}
    return qrels, run


def _trec(qrels: object, run: object, measure: str, key: str) -> float:
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {measure}).evaluate(run)
    judged = [q for q, j in qrels.items() if any(g > 0 for g in j.values())]  # type: ignore[attr-defined]
    return sum(per_query[q][key] for q in judged) / len(judged)


@pytest.mark.parametrize("seed", range(4))
def test_mrr_recall_and_map_agree_with_trec_eval(seed: int) -> None:
    qrels, run = _random_case(seed)
    # trec_eval's reciprocal rank looks at the whole run: give it the top 10.
    top10 = {
        q: {d: scores[d] for d in ranked(scores)[:10]} for q, scores in run.items()
    }
    assert mrr_at_k(qrels, run, 10) == pytest.approx(
        _trec(qrels, top10, "recip_rank", "recip_rank"), abs=1e-9
    )
    assert recall_at_k(qrels, run, 100) == pytest.approx(
        _trec(qrels, run, "recall.100", "recall_100"), abs=1e-9
    )
    assert average_precision(qrels, run) == pytest.approx(
        _trec(qrels, run, "map", "map"), abs=1e-9
    )


def test_mrr_recall_map_by_hand() -> None:
    qrels = {"q": {"a": 1, "b": 1, "c": 0}}
    run = {"q": {"x": 0.9, "a": 0.8, "y": 0.7, "b": 0.6, "c": 0.5}}
    assert mrr_at_k(qrels, run, 10) == pytest.approx(1 / 2)
    assert mrr_at_k(qrels, run, 1) == 0.0
    assert recall_at_k(qrels, run, 2) == pytest.approx(1 / 2)
    assert average_precision(qrels, run) == pytest.approx((1 / 2 + 2 / 4) / 2)
