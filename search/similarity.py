"""Similarity scores and exact top-k search over embeddings in memory.

Same inputs, same results as ``sentence_transformers.util``: scores come back
as torch tensors, and ``semantic_search`` returns, per query, a list of
``{"corpus_id": int, "score": float}`` sorted by score, best first. Exact
search reads the whole corpus for every query batch; it suits up to about a
million embeddings in memory, beyond which a vector store is the tool.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from search.errors import InvalidInputError

ScoreFunction = Callable[[Any, Any], torch.Tensor]


class CorpusHit(TypedDict):
    corpus_id: int
    score: float


def _as_matrix(embeddings: Any) -> torch.Tensor:
    """A 2-D tensor from a tensor, numpy array or list of vectors."""
    if isinstance(embeddings, torch.Tensor):
        matrix = embeddings
    elif isinstance(embeddings, np.ndarray):
        matrix = torch.from_numpy(embeddings)
    elif (
        isinstance(embeddings, Sequence)
        and embeddings
        and isinstance(embeddings[0], torch.Tensor)
    ):
        matrix = torch.stack(list(embeddings))
    else:
        matrix = torch.tensor(embeddings)
    if matrix.dim() == 1:
        matrix = matrix.unsqueeze(0)
    if matrix.dim() != 2:
        raise InvalidInputError(f"embeddings must be 1-D or 2-D, not {matrix.dim()}-D")
    return matrix


def cos_sim(a: Any, b: Any) -> torch.Tensor:
    """Cosine similarity of every row of ``a`` with every row of ``b``."""
    a_norm = F.normalize(_as_matrix(a), p=2, dim=1)
    b_norm = F.normalize(_as_matrix(b), p=2, dim=1)
    return torch.mm(a_norm, b_norm.transpose(0, 1))


def dot_score(a: Any, b: Any) -> torch.Tensor:
    """Dot product of every row of ``a`` with every row of ``b``."""
    return torch.mm(_as_matrix(a), _as_matrix(b).transpose(0, 1))


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    top_k: int = 10,
    score_function: ScoreFunction = cos_sim,
    query_batch_size: int = 100,
    corpus_batch_size: int = 500_000,
) -> list[list[CorpusHit]]:
    """Exact top-k corpus entries for each query, best first.

    The corpus is scored in batches of ``corpus_batch_size`` rows and the
    queries in batches of ``query_batch_size``: lower them to bound memory
    (a score matrix is query_batch_size x corpus_batch_size floats), at some
    cost in run time.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidInputError(f"top_k must be a positive integer, not {top_k!r}")
    queries = _as_matrix(query_embeddings)
    corpus = _as_matrix(corpus_embeddings)
    queries = queries.to(corpus.device)
    k = min(top_k, corpus.shape[0])

    results: list[list[CorpusHit]] = []
    for q_start in range(0, queries.shape[0], query_batch_size):
        query_batch = queries[q_start : q_start + query_batch_size]
        best_scores, best_ids = _top_k_over_corpus(
            query_batch, corpus, k, score_function, corpus_batch_size
        )
        for scores, ids in zip(best_scores.tolist(), best_ids.tolist(), strict=True):
            results.append(
                [
                    {"corpus_id": int(i), "score": float(s)}
                    for s, i in zip(scores, ids, strict=True)
                ]
            )
    return results


def _top_k_over_corpus(
    queries: torch.Tensor,
    corpus: torch.Tensor,
    k: int,
    score_function: ScoreFunction,
    corpus_batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted top-k scores and corpus ids, merged across corpus batches."""
    empty_scores = torch.empty((queries.shape[0], 0), device=corpus.device)
    scores_so_far = empty_scores
    ids_so_far = torch.empty(
        (queries.shape[0], 0), dtype=torch.long, device=corpus.device
    )
    for c_start in range(0, corpus.shape[0], corpus_batch_size):
        scores = score_function(queries, corpus[c_start : c_start + corpus_batch_size])
        batch_k = min(k, scores.shape[1])
        top_scores, top_ids = torch.topk(scores, batch_k, dim=1, sorted=False)
        scores_so_far = torch.cat([scores_so_far, top_scores.to(empty_scores.dtype)], 1)
        ids_so_far = torch.cat([ids_so_far, top_ids + c_start], dim=1)

    merged_scores, positions = torch.topk(scores_so_far, k, dim=1, sorted=True)
    return merged_scores, torch.gather(ids_so_far, 1, positions)
