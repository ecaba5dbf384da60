"""Pooling and batch planning: pure functions against plain loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from search.encoder import plan_batches
from search.pooling import pool


def _reference(tokens: torch.Tensor, lengths: list[int], mode: str) -> torch.Tensor:
    rows = []
    for row, n in zip(tokens, lengths, strict=True):
        real = row[:n]
        if mode == "cls":
            rows.append(real[0])
        elif mode == "max":
            rows.append(real.max(dim=0).values)
        elif mode == "mean":
            rows.append(real.mean(dim=0))
        elif mode == "mean_sqrt_len_tokens":
            rows.append(real.sum(dim=0) / np.sqrt(n))
        elif mode == "weightedmean":
            weights = torch.arange(1, n + 1, dtype=real.dtype).unsqueeze(1)
            rows.append((real * weights).sum(dim=0) / weights.sum())
        elif mode == "lasttoken":
            rows.append(real[-1])
    return torch.stack(rows)


MODES = ["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]


@settings(max_examples=30, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    mode=st.sampled_from(MODES),
    seed=st.integers(0, 1000),
)
def test_each_mode_equals_a_loop_over_real_tokens(
    lengths: list[int], mode: str, seed: int
) -> None:
    width = max(lengths)
    tokens = torch.randn(
        (len(lengths), width, 4), generator=torch.Generator().manual_seed(seed)
    )
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1

    torch.testing.assert_close(
        pool(tokens, mask, [mode]), _reference(tokens, lengths, mode)
    )


def test_several_modes_are_concatenated_in_order() -> None:
    tokens = torch.randn((2, 3, 4))
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    both = pool(tokens, mask, ["cls", "mean"])
    torch.testing.assert_close(both[:, :4], pool(tokens, mask, ["cls"]))
    torch.testing.assert_close(both[:, 4:], pool(tokens, mask, ["mean"]))


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 300), max_size=80),
    batch_size=st.integers(1, 40),
    batch_tokens=st.one_of(st.none(), st.integers(1, 2000)),
)
def test_batches_cover_every_input_within_limits(
    lengths: list[int], batch_size: int, batch_tokens: int | None
) -> None:
    sorted_lengths = np.array(sorted(lengths, reverse=True), dtype=np.int64)
    batches = plan_batches(sorted_lengths, batch_size, batch_tokens)

    covered = [i for start, stop in batches for i in range(start, stop)]
    assert covered == list(range(len(lengths)))
    for start, stop in batches:
        size = stop - start
        assert 1 <= size <= batch_size
        padded = size * max(1, int(sorted_lengths[start]))
        if batch_tokens is not None and size > 1:
            assert padded <= batch_tokens


def test_batches_fill_up_to_the_token_budget() -> None:
    lengths = np.array([256] * 10 + [20] * 100, dtype=np.int64)
    batches = plan_batches(lengths, batch_size=32, batch_tokens=1024)
    # The first input of a batch sets its width; 32 short ones fit in 1024.
    assert batches[:3] == [(0, 4), (4, 8), (8, 12)]
    assert batches[3] == (12, 44)


@pytest.mark.parametrize("bad", [[], [0]])
def test_degenerate_lengths(bad: list[int]) -> None:
    assert plan_batches(np.array(bad, dtype=np.int64), 4, 10) == (
        [] if not bad else [(0, 1)]
    )
