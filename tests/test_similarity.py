"""cos_sim, dot_score, semantic_search: against sentence-transformers, brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sentence_transformers import util

from search import InvalidInputError, cos_sim, dot_score, semantic_search


def _random(rows: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)


def test_scores_match_sentence_transformers() -> None:
    a, b = _random(5, 16, 1), _random(7, 16, 2)
    torch.testing.assert_close(cos_sim(a, b), util.cos_sim(a, b))
    torch.testing.assert_close(dot_score(a, b), util.dot_score(a, b))
    # 1-D inputs and torch inputs are taken as well.
    torch.testing.assert_close(cos_sim(a[0], b), util.cos_sim(a[0], b))
    torch.testing.assert_close(
        dot_score(torch.from_numpy(a), list(torch.from_numpy(b))),
        util.dot_score(a, b),
    )


@settings(max_examples=40, deadline=None)
@given(
    queries=st.integers(1, 9),
    corpus=st.integers(1, 40),
    top_k=st.integers(1, 50),
    query_batch=st.integers(1, 4),
    corpus_batch=st.integers(1, 13),
    seed=st.integers(0, 2**16),
)
def test_semantic_search_equals_brute_force(
    queries: int,
    corpus: int,
    top_k: int,
    query_batch: int,
    corpus_batch: int,
    seed: int,
) -> None:
    q, c = _random(queries, 8, seed), _random(corpus, 8, seed + 1)
    hits = semantic_search(
        q, c, top_k=top_k, query_batch_size=query_batch, corpus_batch_size=corpus_batch
    )

    scores = util.cos_sim(q, c).numpy()
    assert len(hits) == queries
    for row, query_hits in zip(scores, hits, strict=True):
        expected = np.argsort(-row, kind="stable")[: min(top_k, corpus)]
        assert [h["corpus_id"] for h in query_hits] == expected.tolist()
        np.testing.assert_allclose(
            [h["score"] for h in query_hits], row[expected], atol=1e-6
        )


def test_semantic_search_matches_sentence_transformers() -> None:
    q, c = _random(6, 32, 3), _random(300, 32, 4)
    for score_function in (cos_sim, dot_score):
        ours = semantic_search(q, c, top_k=10, score_function=score_function)
        theirs = util.semantic_search(
            torch.from_numpy(q),
            torch.from_numpy(c),
            top_k=10,
            score_function=util.cos_sim
            if score_function is cos_sim
            else util.dot_score,
        )
        for mine, ref in zip(ours, theirs, strict=True):
            assert [h["corpus_id"] for h in mine] == [h["corpus_id"] for h in ref]
            np.testing.assert_allclose(
                [h["score"] for h in mine], [h["score"] for h in ref], atol=1e-6
            )


def test_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="top_k"):
        semantic_search(_random(1, 4, 0), _random(3, 4, 1), top_k=0)
    with pytest.raises(InvalidInputError, match="1-D or 2-D"):
        cos_sim(np.zeros((2, 2, 2), dtype=np.float32), _random(3, 2, 1))
