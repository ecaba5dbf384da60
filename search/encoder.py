"""The sentence encoder: text in, one float32 embedding per input out.

It reproduces sentence-transformers' embeddings for the same folder (same
tokenizer, truncation, pooling and normalization) with less overhead: the
inputs are tokenized once, sorted by token count so that each batch pads
little, and run under ``torch.inference_mode``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F  # noqa: N812
from tokenizers import Encoding, Tokenizer, normalizers
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, PreTrainedModel

from search.device import DTYPES, select_device, select_precision
from search.errors import InvalidInputError, ModelConfigError
from search.lean_bert import LeanBert
from search.model_config import read_model_config
from search.models import DEFAULT_MODEL, model_identity, resolve_model
from search.pooling import pool

logger = logging.getLogger(__name__)

Output = Literal["numpy", "torch"]
FloatArray = npt.NDArray[np.float32]

# Padded tokens per batch on the CPU: about 1k tokens keep the activations in
# cache; 8k-token batches (32 full windows) ran 10-20% slower in bench/encode.py.
CPU_BATCH_TOKENS = 1024
# On a GPU a batch is cut by its padded tokens too, but many more of them: a
# batch of short chunks holds up to BULK_GPU_BATCH_SIZE of them, one of full
# 256-token windows 128 (about 100 MB of activations for a 768-wide model).
GPU_BATCH_TOKENS = 32768
BULK_GPU_BATCH_SIZE = 512
BULK_CPU_BATCH_SIZE = 32


@dataclass
class EncodeStats:
    """Where the time of ``encode`` calls went; pass one in to collect it.

    Times are wall-clock seconds summed over calls. On CUDA the forward time
    includes a synchronize so that it is not only the launch time.
    """

    texts: int = 0
    tokens: int = 0
    padded_tokens: int = 0
    truncated: int = 0
    batches: int = 0
    tokenize_s: float = 0.0
    forward_s: float = 0.0
    pool_s: float = 0.0


class Encoder:
    """Encodes text with a sentence-transformers model folder.

    Args:
        model: a registered name (``all-MiniLM-L6-v2``, ``all-mpnet-base-v2``),
            a local sentence-transformers or transformers folder, or a hub id
            (``org/name``) when the hub is reachable.
        device: ``cuda``, ``mps``, ``cpu`` or None for the best present.
        precision: ``auto`` (bf16 on CUDA and on CPUs with native bf16, fp32
            elsewhere), ``fp32``, ``bf16`` or ``fp16`` (GPU only). fp32 gives
            sentence-transformers' embeddings; bf16 is several times faster
            where the hardware has it, at a cosine distance around 1e-3.
        batch_tokens: the most padded tokens in one batch, on top of
            ``batch_size``. ``auto`` is 1024 on the CPU, where batches that fit
            in cache run faster (measured in bench/encode.py), and 32,768 on
            GPUs; None is no limit.

    The weights for each precision are loaded on first use and kept, so
    switching precision per call costs one load.
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        device: str | None = None,
        precision: str = "auto",
        batch_tokens: int | Literal["auto"] | None = "auto",
    ) -> None:
        self.model_name = str(model)
        self.path = resolve_model(model)
        # The weights' name: the embedding cache and collections are keyed by it.
        self.identity = model_identity(model)
        self.config = read_model_config(self.path)
        self.device = select_device(device)
        self.precision = select_precision(precision, self.device)
        self.batch_tokens = _batch_tokens(batch_tokens, self.device)

        hf_tokenizer = AutoTokenizer.from_pretrained(str(self.config.transformer_path))
        if not hf_tokenizer.is_fast:
            raise ModelConfigError(f"{self.path}: a fast (Rust) tokenizer is needed")
        self._models: dict[str, PreTrainedModel] = {}
        self._loading = threading.Lock()
        self._lean: dict[str, LeanBert | None] = {}
        first = self._model_for(self.precision)

        self.max_seq_length = self._max_seq_length(hf_tokenizer, first)
        self.dimension = int(first.config.hidden_size) * len(self.config.pooling_modes)
        self._tokenizer = self._backend_tokenizer(hf_tokenizer)
        self._offsets_tokenizer = Tokenizer.from_str(self._tokenizer.to_str())
        self._offsets_tokenizer.no_truncation()
        self._pad_id = int(hf_tokenizer.pad_token_id or 0)
        self._token_type_ids = "token_type_ids" in hf_tokenizer.model_input_names
        logger.info(
            "Loaded model %s (%d dimensions, %d tokens) on %s at %s",
            self.model_name,
            self.dimension,
            self.max_seq_length,
            self.device,
            self.precision,
        )

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character spans of ``text``'s tokens, without special tokens.

        The chunker cuts on these, so that chunks are measured in the model's
        own tokens. Tokens that cover no character are left out.
        """
        encoding = self._offsets_tokenizer.encode(text, add_special_tokens=False)
        return [(a, b) for a, b in encoding.offsets if b > a]

    @property
    def special_tokens(self) -> int:
        """How many special tokens the model adds to each input ([CLS], [SEP])."""
        return int(self._tokenizer.num_special_tokens_to_add(is_pair=False))

    @property
    def bulk_batch_size(self) -> int:
        """Inputs per batch for encoding many texts at once (ingest).

        Within it the token budget (``batch_tokens``) cuts batches: inputs
        are sorted by token count across documents, so on a GPU a batch of
        short chunks grows to 512 while one of full windows stays at 128.
        """
        return BULK_CPU_BATCH_SIZE if self.device.type == "cpu" else BULK_GPU_BATCH_SIZE

    @overload
    def encode(
        self,
        texts: str,
        batch_size: int = ...,
        normalize: bool = ...,
        show_progress: bool = ...,
        precision: str | None = ...,
        output: Literal["numpy"] = ...,
        *,
        prompt_name: str | None = ...,
        stats: EncodeStats | None = ...,
    ) -> FloatArray: ...

    @overload
    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = ...,
        normalize: bool = ...,
        show_progress: bool = ...,
        precision: str | None = ...,
        output: Literal["numpy"] = ...,
        *,
        prompt_name: str | None = ...,
        stats: EncodeStats | None = ...,
    ) -> FloatArray: ...

    @overload
    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = ...,
        normalize: bool = ...,
        show_progress: bool = ...,
        precision: str | None = ...,
        *,
        output: Literal["torch"],
        prompt_name: str | None = ...,
        stats: EncodeStats | None = ...,
    ) -> torch.Tensor: ...

    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int = 32,
        normalize: bool = True,
        show_progress: bool = False,
        precision: str | None = None,
        output: Output = "numpy",
        *,
        prompt_name: str | None = None,
        stats: EncodeStats | None = None,
    ) -> FloatArray | torch.Tensor:
        """Encode texts into float32 embeddings of shape (n, dimension).

        A single string gives shape (dimension,), an empty list (0, dimension).
        ``normalize`` scales each embedding to unit length; a model whose
        folder has a Normalize module is normalized either way. ``output``
        ``"torch"`` returns a tensor on the encoder's device. ``prompt_name``
        prefixes each text with one of the model's configured prompts.
        Inputs longer than ``max_seq_length`` tokens are truncated; how many
        were is logged once per call.
        """
        single = isinstance(texts, str)
        batch = _checked_texts(texts)
        _check_positive("batch_size", batch_size)
        if output not in ("numpy", "torch"):
            raise InvalidInputError(
                f"output must be 'numpy' or 'torch', not {output!r}"
            )
        run_precision = select_precision(precision or self.precision, self.device)
        batch = self._with_prompt(batch, prompt_name)
        stats = stats if stats is not None else EncodeStats()

        embeddings = self._encode_sorted(
            batch, batch_size, normalize, show_progress, run_precision, stats
        )
        if output == "numpy":
            result: FloatArray | torch.Tensor = embeddings.cpu().numpy()
        else:
            result = embeddings
        return result[0] if single else result

    @torch.inference_mode()
    def _encode_sorted(
        self,
        texts: list[str],
        batch_size: int,
        normalize: bool,
        show_progress: bool,
        precision: str,
        stats: EncodeStats,
    ) -> torch.Tensor:
        out_device = self.device
        embeddings = torch.empty((len(texts), self.dimension), device=out_device)
        if not texts:
            return embeddings
        model = self._model_for(precision)
        lean = self._lean.get(precision)

        started = time.perf_counter()
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        token_ids = [e.ids for e in encodings]
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64)
        truncated = sum(1 for e in encodings if _was_truncated(e))
        # Longest first, so that a batch too large for memory fails at once.
        order = np.argsort(-lengths, kind="stable")
        stats.tokenize_s += time.perf_counter() - started

        batches = plan_batches(lengths[order], batch_size, self.batch_tokens)
        for start, stop in tqdm(batches, disable=not show_progress, desc="encode"):
            rows = order[start:stop]
            started = time.perf_counter()
            inputs, mask = self._batch_inputs(token_ids, rows, int(lengths[rows[0]]))
            if lean is not None and "attention_mask" not in inputs:
                hidden = lean(inputs["input_ids"])
            else:
                hidden = model(**inputs)[0]
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            stats.forward_s += time.perf_counter() - started

            started = time.perf_counter()
            pooled = pool(hidden.float(), mask, self.config.pooling_modes)
            if normalize or self.config.normalize:
                pooled = F.normalize(pooled, p=2, dim=1)
            embeddings[torch.from_numpy(rows).to(out_device)] = pooled
            stats.pool_s += time.perf_counter() - started
            stats.padded_tokens += hidden.shape[0] * hidden.shape[1]

        stats.texts += len(texts)
        stats.tokens += int(lengths.sum())
        stats.truncated += truncated
        stats.batches += len(batches)
        if truncated:
            logger.warning(
                "%d of %d inputs were longer than %d tokens and were truncated",
                truncated,
                len(texts),
                self.max_seq_length,
            )
        return embeddings

    def _batch_inputs(
        self, token_ids: list[list[int]], rows: npt.NDArray[np.int64], width: int
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Right-padded input tensors for the inputs at ``rows``."""
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            n = len(token_ids[i])
            ids[r, :n] = token_ids[i]
            mask[r, :n] = 1

        input_ids = torch.from_numpy(ids).to(self.device)
        attention_mask = torch.from_numpy(mask).to(self.device)
        inputs = {"input_ids": input_ids}
        # Without padding the mask is all ones; leaving it out lets attention
        # take its unmasked kernel (a single query ran 30% faster).
        if not mask.all():
            inputs["attention_mask"] = attention_mask
        if self._token_type_ids:
            inputs["token_type_ids"] = torch.zeros_like(input_ids)
        return inputs, attention_mask

    def _with_prompt(self, texts: list[str], prompt_name: str | None) -> list[str]:
        if prompt_name is None:
            return texts
        prompts = self.config.prompts
        if prompt_name not in prompts:
            known = ", ".join(sorted(prompts)) or "none"
            raise InvalidInputError(
                f"model {self.model_name} has no prompt {prompt_name!r} "
                f"(configured: {known})"
            )
        prefix = prompts[prompt_name]
        return [prefix + t for t in texts] if prefix else texts

    def _model_for(self, precision: str) -> PreTrainedModel:
        # Threads share one encoder (worker slots, UI sessions): one loads,
        # and none sees a model without its lean forward beside it.
        with self._loading:
            if precision not in self._models:
                model = AutoModel.from_pretrained(
                    str(self.config.transformer_path), dtype=DTYPES[precision]
                )
                model = model.to(self.device).eval()
                self._lean[precision] = LeanBert.from_model(model)
                self._models[precision] = model
        return self._models[precision]

    def _max_seq_length(self, hf_tokenizer: Any, model: PreTrainedModel) -> int:
        """The folder's limit, else the tokenizer's, capped by the positions."""
        limit = self.config.max_seq_length or int(hf_tokenizer.model_max_length)
        positions = getattr(model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            limit = min(limit, positions)
        return limit

    def _backend_tokenizer(self, hf_tokenizer: Any) -> Tokenizer:
        """A private copy of the Rust tokenizer, set to truncate and not pad."""
        backend = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        backend.no_padding()
        backend.enable_truncation(
            max_length=self.max_seq_length,
            strategy="longest_first",
            direction=str(hf_tokenizer.truncation_side),
        )
        if self.config.do_lower_case and not _lowercases(backend.normalizer):
            steps: list[normalizers.Normalizer] = [normalizers.Lowercase()]
            if backend.normalizer is not None:
                steps.append(backend.normalizer)
            backend.normalizer = normalizers.Sequence(steps)
        return backend


def plan_batches(
    sorted_lengths: npt.NDArray[np.int64], batch_size: int, batch_tokens: int | None
) -> list[tuple[int, int]]:
    """Cut inputs sorted longest first into [start, stop) batches.

    A batch holds at most ``batch_size`` inputs and, when ``batch_tokens`` is
    set, at most that many padded tokens (its first input sets the width);
    a single input longer than the budget still gets a batch of its own.
    """
    batches = []
    start = 0
    while start < len(sorted_lengths):
        size = batch_size
        if batch_tokens is not None:
            width = max(1, int(sorted_lengths[start]))
            size = max(1, min(size, batch_tokens // width))
        stop = min(start + size, len(sorted_lengths))
        batches.append((start, stop))
        start = stop
    return batches


def _batch_tokens(value: int | str | None, device: torch.device) -> int | None:
    if value == "auto":
        return CPU_BATCH_TOKENS if device.type == "cpu" else GPU_BATCH_TOKENS
    if value is None:
        return None
    _check_positive("batch_tokens", value)
    return int(value)


def _was_truncated(encoding: Encoding) -> bool:
    return len(encoding.overflowing) > 0


def _lowercases(normalizer: normalizers.Normalizer | None) -> bool:
    if normalizer is None:
        return False
    described = normalizer.__getstate__()
    text = described.decode() if isinstance(described, bytes) else str(described)
    return "Lowercase" in text or '"lowercase":true' in text.replace(" ", "")


def _checked_texts(texts: object) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, Sequence) or isinstance(texts, bytes | bytearray):
        raise InvalidInputError(
            f"texts must be a string or a list of strings, not {type(texts).__name__}"
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"texts[{i}] is {type(text).__name__}, not str; "
                "encode takes strings only"
            )
    return list(texts)


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, not {value!r}")
