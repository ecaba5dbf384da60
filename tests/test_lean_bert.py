"""The lean BERT forward against transformers' own, and where it steps aside."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TinyModelFactory
from sentence_transformers import SentenceTransformer
from transformers import AutoModel, BertConfig, BertModel

from search import Encoder
from search.lean_bert import LeanBert


def _tiny_bert(**overrides: object) -> BertModel:
    torch.manual_seed(1)
    settings: dict[str, object] = {
        "vocab_size": 200,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 48,
        "max_position_embeddings": 40,
    }
    settings.update(overrides)
    return BertModel(BertConfig(**settings)).eval()


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (3, 16), (2, 40)])
def test_lean_forward_equals_transformers(shape: tuple[int, int]) -> None:
    model = _tiny_bert()
    lean = LeanBert.from_model(model)
    assert lean is not None
    ids = torch.randint(0, 200, shape, generator=torch.Generator().manual_seed(2))

    with torch.inference_mode():
        expected = model(input_ids=ids, token_type_ids=torch.zeros_like(ids))[0]
    got = lean(ids)

    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_lean_forward_refuses_more_tokens_than_positions() -> None:
    lean = LeanBert.from_model(_tiny_bert())
    assert lean is not None
    with pytest.raises(ValueError, match="positions"):
        lean(torch.zeros((1, 41), dtype=torch.long))


@pytest.mark.parametrize(
    "overrides",
    [
        {"position_embedding_type": "relative_key"},
        {"hidden_act": "relu"},
        {"is_decoder": True},
    ],
    ids=["relative positions", "relu", "decoder"],
)
def test_other_variants_fall_back(overrides: dict[str, object]) -> None:
    assert LeanBert.from_model(_tiny_bert(**overrides)) is None


def test_a_model_that_disagrees_with_the_probe_falls_back() -> None:
    model = _tiny_bert()
    # A forward hook changes the model's output, as an unknown variant would.
    model.encoder.layer[0].register_forward_hook(
        lambda _module, _inputs, output: (
            (output[0] * 2, *output[1:]) if isinstance(output, tuple) else output * 2
        )
    )
    assert LeanBert.from_model(model) is None


def test_non_bert_models_fall_back(tiny_model: TinyModelFactory) -> None:
    class NotBert(torch.nn.Module):
        config = BertConfig(model_type="mpnet")

    assert LeanBert.from_model(NotBert()) is None
    assert LeanBert.from_model(object()) is None
    # And the tiny sentence-transformers folder's own BERT is covered.
    model = AutoModel.from_pretrained(str(tiny_model()))
    assert LeanBert.from_model(model.eval()) is not None


def test_single_texts_match_sentence_transformers(
    tiny_model: TinyModelFactory, passages: list[str]
) -> None:
    """One text at a time takes the lean path; batches with padding do not."""
    folder = tiny_model()
    encoder = Encoder(folder, device="cpu", precision="fp32")
    reference = SentenceTransformer(str(folder), device="cpu")
    texts = ["Hi", "", *passages[:6]]

    one_by_one = np.stack([encoder.encode(t) for t in texts])
    batched = encoder.encode(texts, batch_size=8)
    expected = reference.encode(texts, batch_size=8)

    np.testing.assert_allclose(one_by_one, expected, atol=2e-6)
    np.testing.assert_allclose(batched, expected, atol=2e-6)


@pytest.mark.model
def test_minilm_queries_one_by_one_match_sentence_transformers(
    minilm_path: Path, passages: list[str]
) -> None:
    encoder = Encoder("all-MiniLM-L6-v2", device="cpu", precision="fp32")
    reference = SentenceTransformer(str(minilm_path), device="cpu")
    queries = [p[:80] for p in passages[:10]]

    ours = np.stack([encoder.encode(q) for q in queries])
    expected = reference.encode(queries, batch_size=1)

    assert float(np.max(1 - np.sum(ours * expected, axis=1))) <= 1e-6
