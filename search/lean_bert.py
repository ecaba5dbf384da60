"""BERT's forward pass as a handful of tensor operations, for unpadded batches.

A search encodes one short query at a time, and there transformers' module
machinery (hooks, config checks, per-layer dispatch, three separate Q/K/V
products) costs about as much as the arithmetic. :class:`LeanBert` runs the
same computation on the same weight tensors with one fused Q/K/V product per
layer and nothing else in between.

It covers plain BERT encoders (absolute positions, erf GELU, post-LayerNorm),
which is the family of all-MiniLM-L6-v2 and most sentence-transformers models,
and only batches without padding (every row the same length), so no attention
mask is needed. :meth:`LeanBert.from_model` returns None for anything else,
and also when a probe forward disagrees with the model's own output, so a
variant it does not know of falls back to transformers instead of encoding
wrongly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812

logger = logging.getLogger(__name__)

# Largest |difference| allowed between the probe forward of the model and
# ours, relative to the size of the model's output. fp32 agrees to ~1e-6;
# bf16 rounds each product, so it gets a looser bound.
PROBE_TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 5e-2, torch.float16: 5e-2}


@dataclass(frozen=True)
class _Layer:
    qkv_weight: torch.Tensor
    qkv_bias: torch.Tensor
    attn_out_weight: torch.Tensor
    attn_out_bias: torch.Tensor
    attn_norm: tuple[torch.Tensor, torch.Tensor]
    ffn_in_weight: torch.Tensor
    ffn_in_bias: torch.Tensor
    ffn_out_weight: torch.Tensor
    ffn_out_bias: torch.Tensor
    ffn_norm: tuple[torch.Tensor, torch.Tensor]


class LeanBert:
    """The last hidden state of a BERT model, for input ids of equal length."""

    def __init__(self, model: Any) -> None:
        config = model.config
        self.heads = int(config.num_attention_heads)
        self.hidden = int(config.hidden_size)
        self.eps = float(config.layer_norm_eps)
        self.max_positions = int(config.max_position_embeddings)
        embeddings = model.embeddings
        self._words = embeddings.word_embeddings.weight
        self._positions = embeddings.position_embeddings.weight
        self._token_types = embeddings.token_type_embeddings.weight
        self._norm = (embeddings.LayerNorm.weight, embeddings.LayerNorm.bias)
        with torch.no_grad():
            self._layers = [_layer(block) for block in model.encoder.layer]

    @classmethod
    def from_model(cls, model: Any) -> LeanBert | None:
        """A lean forward for ``model``, or None when it is not plain BERT."""
        reason = _unsupported(model)
        if reason is None:
            lean = cls(model)
            reason = lean._probe(model)
            if reason is None:
                return lean
        logger.debug("Lean forward not used: %s", reason)
        return None

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states (batch, length, hidden) for ids (batch, length)."""
        batch, length = input_ids.shape
        if length > self.max_positions:
            raise ValueError(f"{length} tokens exceed {self.max_positions} positions")
        x = (
            F.embedding(input_ids, self._words)
            + self._positions[:length]
            + self._token_types[0]
        )
        x = F.layer_norm(x, (self.hidden,), *self._norm, self.eps)
        head_size = self.hidden // self.heads
        for layer in self._layers:
            qkv = F.linear(x, layer.qkv_weight, layer.qkv_bias)
            # (batch, length, 3, heads, head) -> 3 x (batch, heads, length, head)
            q, k, v = qkv.view(batch, length, 3, self.heads, head_size).permute(
                2, 0, 3, 1, 4
            )
            context = F.scaled_dot_product_attention(q, k, v)
            context = context.transpose(1, 2).reshape(batch, length, self.hidden)
            x = F.layer_norm(
                F.linear(context, layer.attn_out_weight, layer.attn_out_bias) + x,
                (self.hidden,),
                *layer.attn_norm,
                self.eps,
            )
            inner = F.gelu(F.linear(x, layer.ffn_in_weight, layer.ffn_in_bias))
            x = F.layer_norm(
                F.linear(inner, layer.ffn_out_weight, layer.ffn_out_bias) + x,
                (self.hidden,),
                *layer.ffn_norm,
                self.eps,
            )
        return x

    def _probe(self, model: Any) -> str | None:
        """Compare with the model's own forward on a short input."""
        device = self._words.device
        length = min(12, self.max_positions)
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(0, self._words.shape[0], (2, length), generator=generator)
        ids = ids.to(device)
        with torch.inference_mode():
            expected = model(
                input_ids=ids, token_type_ids=torch.zeros_like(ids)
            ).last_hidden_state.float()
            got = self(ids).float()
        tolerance = PROBE_TOLERANCE.get(self._words.dtype, 5e-2)
        error = float((got - expected).abs().max()) / max(
            float(expected.abs().max()), 1e-6
        )
        if not error <= tolerance:
            return f"probe differs from the model's forward by {error:.2e}"
        return None


def _unsupported(model: Any) -> str | None:
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) != "bert":
        return f"model type {getattr(config, 'model_type', None)!r} is not bert"
    checks = {
        "position_embedding_type": (
            getattr(config, "position_embedding_type", "absolute"),
            "absolute",
        ),
        "hidden_act": (config.hidden_act, "gelu"),
        "is_decoder": (bool(getattr(config, "is_decoder", False)), False),
        "add_cross_attention": (
            bool(getattr(config, "add_cross_attention", False)),
            False,
        ),
    }
    for name, (value, wanted) in checks.items():
        if value != wanted:
            return f"{name} is {value!r}, not {wanted!r}"
    if config.hidden_size % config.num_attention_heads:
        return "hidden size is not a multiple of the heads"
    return None


def _layer(block: Any) -> _Layer:
    attention = block.attention.self
    qkv_weight = torch.cat(
        [attention.query.weight, attention.key.weight, attention.value.weight]
    )
    qkv_bias = torch.cat(
        [attention.query.bias, attention.key.bias, attention.value.bias]
    )
    return _Layer(
        qkv_weight=qkv_weight.contiguous(),
        qkv_bias=qkv_bias.contiguous(),
        attn_out_weight=block.attention.output.dense.weight,
        attn_out_bias=block.attention.output.dense.bias,
        attn_norm=(
            block.attention.output.LayerNorm.weight,
            block.attention.output.LayerNorm.bias,
        ),
        ffn_in_weight=block.intermediate.dense.weight,
        ffn_in_bias=block.intermediate.dense.bias,
        ffn_out_weight=block.output.dense.weight,
        ffn_out_bias=block.output.dense.bias,
        ffn_norm=(block.output.LayerNorm.weight, block.output.LayerNorm.bias),
    )
