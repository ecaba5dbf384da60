"""Reading a sentence-transformers model folder into one plain value.

A sentence-transformers folder lists its modules in ``modules.json``: a
Transformer (the folder with config.json and the tokenizer), a Pooling module
and, usually, a Normalize module. A plain transformers folder has no
``modules.json``; it gets mean pooling, as sentence-transformers gives it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.errors import ModelConfigError

logger = logging.getLogger(__name__)

# The order sentence-transformers concatenates modes in when several are on.
POOLING_MODES = (
    "cls",
    "max",
    "mean",
    "mean_sqrt_len_tokens",
    "weightedmean",
    "lasttoken",
)
_LEGACY_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class ModelConfig:
    """What the encoder needs to know about a model folder.

    ``max_seq_length`` is None when the folder does not say; the encoder then
    takes the tokenizer's limit capped at the model's position embeddings.
    """

    path: Path
    transformer_path: Path
    pooling_modes: tuple[str, ...] = ("mean",)
    normalize: bool = False
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    is_sentence_transformers: bool = True


def read_model_config(path: Path) -> ModelConfig:
    """Read ``path`` as a sentence-transformers or plain transformers folder."""
    modules_file = path / "modules.json"
    if not modules_file.is_file():
        if not (path / "config.json").is_file():
            raise ModelConfigError(
                f"{path} is not a model folder: it has neither modules.json "
                "nor config.json"
            )
        logger.warning(
            "%s has no modules.json: using mean pooling without normalization, "
            "as for a plain transformers model",
            path,
        )
        return ModelConfig(
            path=path, transformer_path=path, is_sentence_transformers=False
        )

    modules = _load_json(modules_file)
    if not isinstance(modules, list):
        raise ModelConfigError(f"{modules_file} should hold a list of modules")

    transformer_path: Path | None = None
    pooling_modes: tuple[str, ...] = ("mean",)
    normalize = False
    max_seq_length: int | None = None
    do_lower_case = False
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        module_path = path / str(module.get("path", ""))
        if kind == "Transformer":
            transformer_path = module_path
            max_seq_length, do_lower_case = _read_transformer_settings(module_path)
        elif kind == "Pooling":
            pooling_modes = _read_pooling_modes(module_path / "config.json")
        elif kind == "Normalize":
            normalize = True
        else:
            raise ModelConfigError(
                f"{path}: module type {module.get('type')!r} is not supported "
                "(supported: Transformer, Pooling, Normalize)"
            )
    if transformer_path is None:
        raise ModelConfigError(f"{modules_file} lists no Transformer module")

    return ModelConfig(
        path=path,
        transformer_path=transformer_path,
        pooling_modes=pooling_modes,
        normalize=normalize,
        max_seq_length=max_seq_length,
        do_lower_case=do_lower_case,
        prompts=_read_prompts(path / "config_sentence_transformers.json"),
    )


def _load_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelConfigError(f"cannot read {file}: {exc}") from exc


def _read_transformer_settings(folder: Path) -> tuple[int | None, bool]:
    settings_file = folder / "sentence_bert_config.json"
    if not settings_file.is_file():
        return None, False
    settings = _load_json(settings_file)
    max_seq_length = settings.get("max_seq_length")
    if max_seq_length is not None and (
        not isinstance(max_seq_length, int) or max_seq_length < 1
    ):
        raise ModelConfigError(
            f"{settings_file}: max_seq_length must be a positive integer"
        )
    return max_seq_length, bool(settings.get("do_lower_case", False))


def _read_pooling_modes(config_file: Path) -> tuple[str, ...]:
    """Pooling modes in concatenation order, from old or new config keys."""
    config = _load_json(config_file)
    if "pooling_mode" in config:
        value = config["pooling_mode"]
        modes = (value,) if isinstance(value, str) else tuple(value)
    else:
        modes = tuple(mode for key, mode in _LEGACY_KEYS.items() if config.get(key))
    unknown = [m for m in modes if m not in POOLING_MODES]
    if unknown:
        raise ModelConfigError(
            f"{config_file}: unsupported pooling mode {unknown[0]!r} "
            f"(supported: {', '.join(POOLING_MODES)})"
        )
    return modes or ("mean",)


def _read_prompts(file: Path) -> dict[str, str]:
    if not file.is_file():
        return {}
    prompts = _load_json(file).get("prompts") or {}
    return {str(k): str(v) for k, v in prompts.items()}
