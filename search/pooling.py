"""Pooling token embeddings into one embedding per input.

Pure tensor maths, the same as sentence-transformers' Pooling module for
right-padded batches. Inputs are float32 token embeddings of shape
(batch, tokens, dim) and an attention mask of shape (batch, tokens) whose ones
come first in each row.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_EPS = 1e-9


def pool(
    token_embeddings: torch.Tensor,
    attention_mask: torch.Tensor,
    modes: Sequence[str],
) -> torch.Tensor:
    """Concatenate the pooled embeddings of ``modes``, in the order given."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    pooled = [_POOLERS[mode](token_embeddings, mask) for mode in modes]
    return pooled[0] if len(pooled) == 1 else torch.cat(pooled, dim=-1)


def _cls(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return tokens[:, 0]


def _max(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return tokens.masked_fill(mask == 0, float("-inf")).max(dim=1).values


def _mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=_EPS)


def _mean_sqrt_len(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (tokens * mask).sum(dim=1) / torch.sqrt(mask.sum(dim=1).clamp(min=_EPS))


def _weighted_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # Later tokens weigh more: position 1 weighs 1, position n weighs n.
    positions = torch.arange(1, tokens.shape[1] + 1, device=tokens.device)
    weights = mask * positions.to(tokens.dtype).view(1, -1, 1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=_EPS)


def _last_token(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    last = (mask.squeeze(-1).sum(dim=1).long() - 1).clamp(min=0)
    return tokens[torch.arange(tokens.shape[0], device=tokens.device), last]


_POOLERS = {
    "cls": _cls,
    "max": _max,
    "mean": _mean,
    "mean_sqrt_len_tokens": _mean_sqrt_len,
    "weightedmean": _weighted_mean,
    "lasttoken": _last_token,
}
