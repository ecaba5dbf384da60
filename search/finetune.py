"""Fine-tuning a sentence-embedding model on a domain's own pairs.

Two losses, both on plain torch:

- ``mnrl`` (multiple-negatives ranking): (query, passage) pairs; every other
  passage in the batch is a negative for a query, plus the example's own
  ``negative`` when it has one. A batch never holds one text twice, so that a
  query's second relevant passage is not taught to it as a negative.
- ``cosine``: (text, text, score) triples; the cosine of the two embeddings is
  pulled towards the score (mean squared error), as for graded similarity.

The result is a sentence-transformers folder: the trained transformer and its
tokenizer, with the base model's pooling and normalization modules beside
them, so that sentence-transformers and :class:`search.Encoder` load it alike.
It is written into a temporary folder and renamed into place when complete.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from tqdm.auto import tqdm

from search.device import DTYPES, select_device, select_precision
from search.errors import InvalidInputError
from search.evaluation import load_beir
from search.model_config import read_model_config
from search.models import resolve_model
from search.pooling import pool

logger = logging.getLogger(__name__)

LOSSES = ("mnrl", "cosine")
PROVENANCE_FILE = "semsearch-finetune.json"
LOG_FILE = "training-log.jsonl"

# Accepted JSON-lines shapes: keys of a pair, and of a scored pair.
_PAIR_KEYS = (("query", "passage"), ("anchor", "positive"), ("text1", "text2"))
_SCORED_KEYS = (
    ("text1", "text2"),
    ("sentence1", "sentence2"),
    ("query", "passage"),
    ("anchor", "positive"),
)


@dataclass(frozen=True)
class Example:
    """Two texts that belong together, optionally a negative or a score."""

    first: str
    second: str
    negative: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class TrainConfig:
    # The defaults are the recipe measured in bench/finetune.py (README).
    loss: str = "mnrl"
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 3e-5
    warmup: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    # The similarity scale of the ranking loss (its inverse temperature).
    scale: float = 20.0
    max_seq_length: int | None = None
    precision: str = "auto"
    device: str | None = None

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InvalidInputError(
                f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}"
            )
        if self.epochs < 1:
            raise InvalidInputError("epochs must be at least 1")
        if self.batch_size < 2:
            raise InvalidInputError("batch size must be at least 2")
        if not 0 <= self.warmup < 1:
            raise InvalidInputError("warmup is a fraction of the steps, in [0, 1)")
        if self.learning_rate <= 0:
            raise InvalidInputError("the learning rate must be positive")


@dataclass
class TrainResult:
    out: Path
    examples: int
    steps: int
    seconds: float
    epoch_losses: list[float] = field(default_factory=list)


# -- training data -------------------------------------------------------


def load_examples(source: Path, loss: str = "mnrl") -> list[Example]:
    """Examples from a BEIR folder (train split) or a JSON-lines file.

    A BEIR folder gives one (query, passage) pair per judged-relevant
    document of ``qrels/train.tsv``. A JSON-lines file holds one example per
    line: ``{"query": ..., "passage": ...}`` (also anchor/positive, with an
    optional ``negative``), ``{"text1": ..., "text2": ..., "score": ...}`` or
    a list ``[text, text]`` / ``[text, text, score]``.
    """
    source = Path(source)
    if source.is_dir():
        examples = beir_examples(source)
    elif source.is_file():
        examples = list(_jsonl_examples(source))
    else:
        raise InvalidInputError(f"training data {source} does not exist")
    if not examples:
        raise InvalidInputError(f"{source} holds no training examples")
    scored = sum(e.score is not None for e in examples)
    if loss == "cosine" and scored < len(examples):
        raise InvalidInputError(
            f"the cosine loss needs a score on every example; {source} has "
            f"{len(examples) - scored} of {len(examples)} without one "
            "(use --loss mnrl for pairs)"
        )
    return examples


def beir_examples(folder: Path) -> list[Example]:
    data = load_beir(folder, split="train")
    examples = []
    for query_id, judged in sorted(data.qrels.items()):
        query = data.queries.get(query_id)
        if not query:
            continue
        for doc_id, relevance in sorted(judged.items()):
            passage = data.corpus.get(doc_id)
            if relevance > 0 and passage:
                examples.append(Example(query, passage))
    return examples


def with_hard_negatives(
    folder: Path,
    examples: Sequence[Example],
    model: str | Path,
    skip: int = 3,
    depth: int = 30,
) -> list[Example]:
    """Each BEIR pair with a hard negative: a document ``model`` ranks high
    for the query that is not judged relevant to it.

    The ``skip`` best-ranked documents are passed over: in sparsely judged
    collections some of them are relevant but unjudged, and taught as
    negatives they would pull the model the wrong way. A query with no
    candidate left within ``depth`` keeps its pair as it was.
    """
    import numpy as np
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    from search.encoder import Encoder

    data = load_beir(folder, split="train")
    doc_ids = sorted(data.corpus)
    encoder = Encoder(model)
    documents = encoder.encode([data.corpus[i] for i in doc_ids])
    by_text = {text: qid for qid, text in data.queries.items()}
    queries = sorted({e.first for e in examples if e.first in by_text})
    vectors = encoder.encode(queries) if queries else np.zeros((0, 1))
    negatives: dict[str, str] = {}
    with threadpool_limits(1):  # numpy beside torch on few cores (see README)
        scores = vectors @ documents.T
    for row, query in enumerate(queries):
        relevant = set(data.qrels.get(by_text[query], {}))
        ranked = np.argsort(-scores[row])[:depth]
        candidates = [doc_ids[j] for j in ranked if doc_ids[j] not in relevant]
        if len(candidates) > skip:
            negatives[query] = data.corpus[candidates[skip]]
    return [
        Example(e.first, e.second, negative=negatives.get(e.first), score=e.score)
        for e in examples
    ]


def _jsonl_examples(path: Path) -> Iterator[Example]:
    with path.open(encoding="utf-8") as lines:
        for number, line in _numbered(path, lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{path}:{number}: {exc.msg}") from None
            try:
                yield _example_of(record)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{path}:{number}: {exc}") from None


def _numbered(path: Path, lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    try:
        yield from enumerate(lines, start=1)
    except UnicodeDecodeError:
        raise InvalidInputError(f"{path}: not UTF-8 text (save it as UTF-8)") from None


def _example_of(record: Any) -> Example:
    if isinstance(record, list):
        if len(record) not in (2, 3) or not all(isinstance(t, str) for t in record[:2]):
            raise InvalidInputError(
                "a list example is [text, text] or [text, text, score]"
            )
        score = _score(record[2]) if len(record) == 3 else None
        return Example(_text(record[0]), _text(record[1]), score=score)
    if not isinstance(record, dict):
        raise InvalidInputError("an example is a JSON object or list")
    if "score" in record:
        for first, second in _SCORED_KEYS:
            if first in record and second in record:
                return Example(
                    _text(record[first]),
                    _text(record[second]),
                    score=_score(record["score"]),
                )
    for first, second in _PAIR_KEYS:
        if first in record and second in record:
            negative = record.get("negative")
            return Example(
                _text(record[first]),
                _text(record[second]),
                negative=_text(negative) if negative is not None else None,
            )
    raise InvalidInputError(
        "expected query/passage, anchor/positive or text1/text2/score keys; got "
        + ", ".join(sorted(map(str, record)))
    )


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("texts must be non-empty strings")
    return value


def _score(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"score {value!r} is not a number")
    if not -1.0 <= float(value) <= 1.0:
        raise InvalidInputError(f"score {value} is outside [-1, 1] (a cosine)")
    return float(value)


# -- batches -------------------------------------------------------------


def batches(
    examples: Sequence[Example], batch_size: int, rng: random.Random, distinct: bool
) -> list[list[Example]]:
    """One epoch's batches, shuffled by ``rng``.

    With ``distinct``, no text appears twice in a batch (a ranking loss would
    take the repeat for a negative); an example that would repeat one waits
    for a later batch. Batches of one example are dropped.
    """
    order = list(range(len(examples)))
    rng.shuffle(order)
    if not distinct:
        cut = [
            [examples[i] for i in order[start : start + batch_size]]
            for start in range(0, len(order), batch_size)
        ]
        return [b for b in cut if len(b) > 1]
    result = []
    waiting = order
    while waiting:
        batch: list[Example] = []
        seen: set[str] = set()
        later = []
        for index in waiting:
            example = examples[index]
            texts = {example.first, example.second} | (
                {example.negative} if example.negative else set()
            )
            if len(batch) < batch_size and not texts & seen:
                batch.append(example)
                seen |= texts
            else:
                later.append(index)
        # Each round places at least its first example, so the loop ends; a
        # batch of one is dropped, and the rest still make batches.
        if len(batch) > 1:
            result.append(batch)
        waiting = later
    return result


def steps_per_epoch(examples: Sequence[Example], config: TrainConfig) -> int:
    return len(
        batches(examples, config.batch_size, random.Random(config.seed), distinct=True)
    )


# -- the model -----------------------------------------------------------


class TrainableModel:
    """The transformer of a sentence-transformers folder, with its pooling."""

    def __init__(
        self,
        base: str | Path,
        max_seq_length: int | None = None,
        device: str | None = None,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.device = select_device(device)
        self.base_path = resolve_model(base)
        self.config = read_model_config(self.base_path)
        path = str(self.config.transformer_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path, dtype=torch.float32).to(
            self.device
        )
        limit = self.config.max_seq_length or int(
            min(
                self.tokenizer.model_max_length,
                getattr(self.model.config, "max_position_embeddings", 512),
            )
        )
        self.max_seq_length = min(max_seq_length or limit, limit)

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        if self.config.do_lower_case:
            texts = [t.lower() for t in texts]
        inputs = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_seq_length,
            return_tensors="pt",
        ).to(self.device)
        output = self.model(**inputs)
        pooled = pool(
            output.last_hidden_state,
            inputs["attention_mask"],
            self.config.pooling_modes,
        )
        return pooled.float()


def mnrl_loss(
    model: TrainableModel, batch: Sequence[Example], scale: float
) -> torch.Tensor:
    """Cross-entropy of each query against every passage of the batch."""
    queries = F.normalize(model.embed([e.first for e in batch]), dim=-1)
    passages = [e.second for e in batch] + [e.negative for e in batch if e.negative]
    candidates = F.normalize(model.embed(passages), dim=-1)
    scores = queries @ candidates.T * scale
    return F.cross_entropy(scores, torch.arange(len(batch), device=scores.device))


def cosine_loss(model: TrainableModel, batch: Sequence[Example]) -> torch.Tensor:
    """Mean squared error between the pairs' cosines and their scores."""
    first = model.embed([e.first for e in batch])
    second = model.embed([e.second for e in batch])
    target = torch.tensor(
        [e.score for e in batch], dtype=torch.float32, device=first.device
    )
    return F.mse_loss(F.cosine_similarity(first, second), target)


def _schedule(warmup_steps: int, total: int) -> Callable[[int], float]:
    """Linear warmup to the learning rate, then linear decay to zero."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total - step) / max(1, total - warmup_steps))

    return factor


def finetune(
    base: str | Path,
    examples: Sequence[Example],
    out: Path,
    config: TrainConfig | None = None,
    *,
    source: str = "",
    overwrite: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int, TrainableModel], None] | None = None,
) -> TrainResult:
    """Train ``base`` on ``examples`` and write the model to ``out``.

    ``on_epoch(epoch, model)`` is called after each epoch (bench/finetune.py
    scores the model there); the model is back in training mode after it.
    """
    config = config or TrainConfig()
    out = Path(out)
    _check_out(out, overwrite)
    if config.loss == "cosine" and any(e.score is None for e in examples):
        raise InvalidInputError("the cosine loss needs a score on every example")

    random.seed(config.seed)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    model = TrainableModel(base, config.max_seq_length, config.device)
    precision = _training_precision(config.precision, model.device)

    epochs = [
        batches(examples, config.batch_size, rng, distinct=config.loss == "mnrl")
        for _ in range(config.epochs)
    ]
    total = sum(len(e) for e in epochs)
    if total == 0:
        raise InvalidInputError("too few examples for one batch of two")
    optimizer = torch.optim.AdamW(
        _parameter_groups(model.model, config.weight_decay), lr=config.learning_rate
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(math.ceil(total * config.warmup), total)
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    work = out.parent / f".{out.name}.partial-{os.getpid()}-{time.time_ns()}"
    work.mkdir()  # the usual permissions (mkdtemp's 0700 would hide the model)
    try:
        result = TrainResult(out, len(examples), total, 0.0)
        started = time.perf_counter()
        model.model.train()
        step = 0
        with (
            (work / LOG_FILE).open("w", encoding="utf-8") as log,
            tqdm(
                total=total, desc="fine-tuning", unit="step", disable=not progress
            ) as bar,
        ):
            for epoch, epoch_batches in enumerate(epochs, start=1):
                losses = []
                for batch in epoch_batches:
                    with torch.autocast(
                        model.device.type,
                        dtype=DTYPES.get(precision, torch.float32),
                        enabled=precision != "fp32",
                    ):
                        loss = (
                            mnrl_loss(model, batch, config.scale)
                            if config.loss == "mnrl"
                            else cosine_loss(model, batch)
                        )
                    loss.backward()  # type: ignore[no-untyped-call]
                    torch.nn.utils.clip_grad_norm_(model.model.parameters(), 1.0)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    step += 1
                    value = float(loss.detach())
                    losses.append(value)
                    log.write(
                        json.dumps(
                            {
                                "step": step,
                                "epoch": epoch,
                                "loss": round(value, 6),
                                "lr": scheduler.get_last_lr()[0],
                                "elapsed_s": round(time.perf_counter() - started, 2),
                            }
                        )
                        + "\n"
                    )
                    bar.set_postfix(epoch=epoch, loss=f"{value:.4f}")
                    bar.update()
                result.epoch_losses.append(sum(losses) / len(losses))
                logger.info("epoch %d: mean loss %.4f", epoch, result.epoch_losses[-1])
                if on_epoch is not None:
                    model.model.eval()
                    on_epoch(epoch, model)
                    model.model.train()
        result.seconds = time.perf_counter() - started
        _save(model, work, config, result, source, precision)
        _move_into_place(work, out, overwrite)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return result


def _training_precision(precision: str, device: torch.device) -> str:
    """fp32 on the CPU unless bf16 is asked for; bf16 autocast on GPUs.

    ``auto`` keeps the CPU at fp32: with bf16 autocast the backward pass ran
    about 10x slower than fp32 on an AVX512-BF16 CPU (bench/finetune.py).
    """
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    chosen = select_precision(precision, device)
    if chosen == "fp16" and device.type != "cuda":
        raise InvalidInputError("fp16 training needs a GPU")
    return chosen


def _parameter_groups(
    module: torch.nn.Module, weight_decay: float
) -> list[dict[str, Any]]:
    """Weight decay on weights, none on biases and layer norms."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, parameter in module.named_parameters():
        if not parameter.requires_grad:
            continue
        skip = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
        (no_decay if skip else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InvalidInputError(
            f"{out} already holds files; choose another --out or pass --overwrite"
        )


# -- writing the folder --------------------------------------------------


def _save(
    model: TrainableModel,
    work: Path,
    config: TrainConfig,
    result: TrainResult,
    source: str,
    precision: str,
) -> None:
    save_folder(model, work)
    provenance = {
        "base": str(model.base_path),
        "source": source,
        "examples": result.examples,
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "epoch_losses": [round(x, 6) for x in result.epoch_losses],
        "precision": precision,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": asdict(config),
        "max_seq_length": model.max_seq_length,
    }
    (work / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")


def save_folder(model: TrainableModel, work: Path) -> None:
    """The trained transformer where the base keeps it, and the base's other
    modules (pooling, normalization) and sentence-transformers files copied."""
    base = model.base_path
    modules_file = base / "modules.json"
    if modules_file.is_file():
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
    else:
        modules = _plain_modules(work, int(model.model.config.hidden_size))
    for module in modules:
        relative = str(module.get("path", ""))
        if module.get("type", "").endswith("Transformer"):
            target = work / relative
            target.mkdir(parents=True, exist_ok=True)
            model.model.save_pretrained(target, safe_serialization=True)
            model.tokenizer.save_pretrained(target)
            _write_st_config(base / relative, target, model)
        elif relative and (base / relative).is_dir():
            shutil.copytree(base / relative, work / relative, dirs_exist_ok=True)
    (work / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    st_config = base / "config_sentence_transformers.json"
    if st_config.is_file():
        shutil.copy2(st_config, work / st_config.name)


def _write_st_config(base_folder: Path, target: Path, model: TrainableModel) -> None:
    name = "sentence_bert_config.json"
    existing = base_folder / name
    config: dict[str, Any] = (
        json.loads(existing.read_text(encoding="utf-8")) if existing.is_file() else {}
    )
    config["max_seq_length"] = model.max_seq_length
    config.setdefault("do_lower_case", model.config.do_lower_case)
    (target / name).write_text(json.dumps(config, indent=2) + "\n")


def _plain_modules(work: Path, dimension: int) -> list[dict[str, Any]]:
    """Modules for a base that was a plain transformers folder: mean pooling."""
    pooling = work / "1_Pooling"
    pooling.mkdir()
    (pooling / "config.json").write_text(
        json.dumps(
            {"word_embedding_dimension": dimension, "pooling_mode_mean_tokens": True}
        )
    )
    return [
        {
            "idx": 0,
            "name": "0",
            "path": "",
            "type": "sentence_transformers.models.Transformer",
        },
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]


def _move_into_place(work: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished folder to ``out``; an old one goes only after."""
    old = None
    if out.exists():
        if not overwrite and any(out.iterdir()):
            raise InvalidInputError(f"{out} was filled while training; not replaced")
        old = out.with_name(f".{out.name}.old-{time.time_ns()}")
        out.rename(old)
    work.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
