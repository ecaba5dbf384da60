"""The real models against sentence-transformers on real text.

all-MiniLM-L6-v2 ships with the project's dependencies; all-mpnet-base-v2
runs where its parts are installed (scripts/setup.sh --with-mpnet, as CI does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from search import Encoder, EncoderEmbeddings
from search.models import REGISTRY, resolve_model


def _texts(passages: list[str]) -> list[str]:
    # Short passages, and long ones that run past the 256-token window.
    long_texts = [" ".join(passages[i : i + 12]) for i in range(0, 24, 6)]
    return [*passages, *long_texts]


def _max_cos_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(1 - np.sum(a * b, axis=1)))


@pytest.mark.model
def test_minilm_fp32_matches_sentence_transformers(
    minilm_path: Path, passages: list[str]
) -> None:
    texts = _texts(passages)
    ours = Encoder("all-MiniLM-L6-v2", device="cpu", precision="fp32")
    reference = SentenceTransformer(str(minilm_path), device="cpu")

    expected = reference.encode(texts, batch_size=8)
    assert _max_cos_distance(ours.encode(texts, batch_size=8), expected) <= 1e-6
    assert _max_cos_distance(ours.encode(texts, batch_size=5), expected) <= 1e-6
    assert ours.dimension == 384
    assert ours.max_seq_length == 256


@pytest.mark.model
def test_minilm_bf16_is_close(minilm_path: Path, passages: list[str]) -> None:
    ours = Encoder("all-MiniLM-L6-v2", device="cpu", precision="fp32")
    fp32 = ours.encode(passages)
    bf16 = ours.encode(passages, precision="bf16")
    assert _max_cos_distance(fp32, bf16) <= 2e-3


@pytest.mark.model
def test_minilm_ranks_the_sample_sensibly(passages: list[str]) -> None:
    """Queries find the passages written about their subject, best first."""
    adapter = EncoderEmbeddings(Encoder("all-MiniLM-L6-v2", precision="fp32"))
    corpus = np.array(adapter.embed_documents(passages))

    def top(query: str, k: int) -> list[str]:
        scores = corpus @ np.array(adapter.embed_query(query))
        return [passages[i] for i in np.argsort(-scores)[:k]]

    assert top("what protects my files if a disk breaks?", 1)[0].startswith("A RAID")
    assert all(
        "bread" in p.lower() or "sourdough" in p.lower()
        for p in top("why does bread rise", 2)
    )


@pytest.mark.model
def test_hub_id_of_a_registered_model_resolves_offline(minilm_path: Path) -> None:
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == minilm_path


@pytest.mark.mpnet
def test_mpnet_fp32_matches_sentence_transformers(passages: list[str]) -> None:
    mpnet = REGISTRY["all-mpnet-base-v2"]
    if not mpnet.installed():
        pytest.skip("all-mpnet-base-v2 parts not installed: " + mpnet.install)
    texts = _texts(passages)[:20]
    ours = Encoder("all-mpnet-base-v2", device="cpu", precision="fp32")
    assert ours.path == mpnet.home()
    assert mpnet.is_unpacked()
    assert ours.dimension == 768
    assert ours.max_seq_length == 384

    reference = SentenceTransformer(str(ours.path), device="cpu")
    expected = reference.encode(texts, batch_size=8)
    assert _max_cos_distance(ours.encode(texts, batch_size=8), expected) <= 1e-6
