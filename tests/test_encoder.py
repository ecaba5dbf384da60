"""The encoder on tiny random models: parity, batching, inputs, options."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TinyModelFactory
from sentence_transformers import SentenceTransformer

from search import Encoder, EncodeStats, InvalidInputError
from search.errors import ModelConfigError

POOLINGS = [
    ("mean",),
    ("cls",),
    ("max",),
    ("mean_sqrt_len_tokens",),
    ("weightedmean",),
    ("lasttoken",),
    ("cls", "mean", "max"),
]


@pytest.fixture(scope="module")
def texts(passages: list[str]) -> list[str]:
    # Lengths from one word to well past the tiny models' 32-token window.
    long_text = " ".join(passages[:4])
    return ["Hi", "", "  padded with spaces  ", long_text, *passages[:12]]


@pytest.mark.parametrize("pooling", POOLINGS, ids="+".join)
def test_matches_sentence_transformers_for_each_pooling(
    tiny_model: TinyModelFactory, texts: list[str], pooling: tuple[str, ...]
) -> None:
    folder = tiny_model(pooling=pooling, normalize=False)
    ours = Encoder(folder, device="cpu", precision="fp32").encode(
        texts, batch_size=4, normalize=False
    )
    reference = SentenceTransformer(str(folder), device="cpu").encode(
        texts, batch_size=4
    )

    assert ours.shape == (len(texts), 32 * len(pooling))
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=2e-5, rtol=1e-4)


def test_normalize_module_and_flag(
    tiny_model: TinyModelFactory, texts: list[str]
) -> None:
    raw = Encoder(tiny_model(normalize=False), precision="fp32")
    unit = Encoder(tiny_model(normalize=True), precision="fp32")

    raw_norms = np.linalg.norm(raw.encode(texts, normalize=False), axis=1)
    flagged_norms = np.linalg.norm(raw.encode(texts, normalize=True), axis=1)
    module_norms = np.linalg.norm(unit.encode(texts, normalize=False), axis=1)

    assert np.all(np.abs(raw_norms - 1) > 1e-3)
    np.testing.assert_allclose(flagged_norms, 1, atol=1e-6)
    np.testing.assert_allclose(module_norms, 1, atol=1e-6)


def test_plain_transformers_folder_gets_mean_pooling_and_a_warning(
    tiny_model: TinyModelFactory, texts: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    folder = tiny_model(modules=False, max_seq_length=None)
    with caplog.at_level(logging.WARNING):
        encoder = Encoder(folder, precision="fp32")
    assert any("no modules.json" in r.getMessage() for r in caplog.records)

    with_modules = Encoder(
        tiny_model(normalize=False, max_seq_length=None), "cpu", precision="fp32"
    )
    assert encoder.config.pooling_modes == ("mean",)
    # Without sentence_bert_config.json the limit is the position embeddings.
    assert encoder.max_seq_length == 64
    np.testing.assert_allclose(
        encoder.encode(texts, normalize=False),
        with_modules.encode(texts, normalize=False),
        atol=1e-6,
    )


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 64])
@pytest.mark.parametrize("batch_tokens", [None, 40, 1024])
def test_batched_equals_one_by_one(
    tiny_model: TinyModelFactory,
    texts: list[str],
    batch_size: int,
    batch_tokens: int | None,
) -> None:
    encoder = Encoder(tiny_model(), precision="fp32", batch_tokens=batch_tokens)
    one_by_one = np.stack([encoder.encode(t) for t in texts])
    batched = encoder.encode(texts, batch_size=batch_size)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-6)


def test_input_order_is_restored(
    tiny_model: TinyModelFactory, texts: list[str]
) -> None:
    encoder = Encoder(tiny_model(), precision="fp32")
    order = list(range(len(texts)))
    random.Random(7).shuffle(order)

    in_order = encoder.encode(texts, batch_size=3)
    shuffled = encoder.encode([texts[i] for i in order], batch_size=3)
    np.testing.assert_allclose(shuffled, in_order[order], atol=1e-6)


def test_shapes_and_outputs(tiny_model: TinyModelFactory, texts: list[str]) -> None:
    encoder = Encoder(tiny_model(), precision="fp32")
    assert encoder.encode("one text").shape == (32,)
    assert encoder.encode([]).shape == (0, 32)
    assert encoder.encode([], output="torch").shape == (0, 32)

    as_tensor = encoder.encode(texts, output="torch")
    assert isinstance(as_tensor, torch.Tensor)
    assert as_tensor.dtype == torch.float32
    np.testing.assert_array_equal(as_tensor.numpy(), encoder.encode(texts))


def test_truncation_is_counted_and_logged_once(
    tiny_model: TinyModelFactory, passages: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    encoder = Encoder(tiny_model(max_seq_length=16), precision="fp32")
    long_texts = [" ".join(passages[:3]), " ".join(passages[3:6])]
    stats = EncodeStats()
    with caplog.at_level(logging.WARNING, logger="search.encoder"):
        encoder.encode([*long_texts, "short"], batch_size=1, stats=stats)

    messages = [r.getMessage() for r in caplog.records if r.name == "search.encoder"]
    assert messages == ["2 of 3 inputs were longer than 16 tokens and were truncated"]
    assert stats.truncated == 2
    assert stats.texts == 3
    assert stats.batches == 3
    # Truncated inputs are exactly the window long, special tokens included.
    assert stats.tokens == 16 + 16 + len(encoder._tokenizer.encode("short").ids)


def test_prompts_prefix_the_text(tiny_model: TinyModelFactory) -> None:
    encoder = Encoder(tiny_model(prompts={"query": "query: ", "document": ""}))
    np.testing.assert_allclose(
        encoder.encode("what is a cell", prompt_name="query"),
        encoder.encode("query: what is a cell"),
        atol=1e-6,
    )
    with pytest.raises(InvalidInputError, match="no prompt 'passage'"):
        encoder.encode("x", prompt_name="passage")


def test_bf16_stays_close_to_fp32(
    tiny_model: TinyModelFactory, texts: list[str]
) -> None:
    encoder = Encoder(tiny_model(), precision="fp32")
    fp32 = encoder.encode(texts)
    bf16 = encoder.encode(texts, precision="bf16")
    assert bf16.dtype == np.float32
    cosines = np.sum(fp32 * bf16, axis=1)
    assert cosines.min() > 0.99


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (123, "not int"),
        (None, "not NoneType"),
        (b"bytes", "not bytes"),
        (["ok", 5], r"texts\[1\] is int"),
        (["ok", None], r"texts\[1\] is NoneType"),
        ({"a": 1}, "not dict"),
    ],
)
def test_non_strings_are_refused(
    tiny_model: TinyModelFactory, texts: object, message: str
) -> None:
    encoder = Encoder(tiny_model())
    with pytest.raises(InvalidInputError, match=message):
        encoder.encode(texts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"batch_size": True}, "batch_size must be a positive integer"),
        ({"precision": "fp8"}, "unknown precision 'fp8'"),
        ({"precision": "fp16"}, "fp16 needs a GPU"),
        ({"output": "list"}, "output must be 'numpy' or 'torch'"),
    ],
)
def test_bad_arguments_are_refused(
    tiny_model: TinyModelFactory, kwargs: dict[str, object], message: str
) -> None:
    encoder = Encoder(tiny_model())
    with pytest.raises(InvalidInputError, match=message):
        encoder.encode(["text"], **kwargs)  # type: ignore[arg-type]


def test_bad_constructor_arguments(tiny_model: TinyModelFactory) -> None:
    folder = tiny_model()
    with pytest.raises(InvalidInputError, match="fp16 needs a GPU"):
        Encoder(folder, device="cpu", precision="fp16")
    with pytest.raises(InvalidInputError, match="unknown device"):
        Encoder(folder, device="quantum")
    with pytest.raises(InvalidInputError, match="batch_tokens"):
        Encoder(folder, batch_tokens=0)
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="CUDA is not available"):
            Encoder(folder, device="cuda")


def test_unsupported_module_is_refused(tiny_model: TinyModelFactory) -> None:
    folder = tiny_model(extra_module="sentence_transformers.models.Dense")
    with pytest.raises(ModelConfigError, match=r"Dense.*not supported"):
        Encoder(folder)


def test_unknown_pooling_mode_is_refused(
    tiny_model: TinyModelFactory, tmp_path: Path
) -> None:
    source = tiny_model()
    folder = tmp_path / "model"
    folder.mkdir()
    for item in source.iterdir():
        if item.is_file():
            (folder / item.name).write_bytes(item.read_bytes())
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode": "median"}), encoding="utf-8"
    )
    with pytest.raises(ModelConfigError, match="unsupported pooling mode 'median'"):
        Encoder(folder)


def test_a_gpu_batches_bulk_encoding_by_token_count() -> None:
    """Sorted chunks of a bulk encode: many short ones to a GPU batch, few
    long ones; on the CPU batches stay within the cache-sized budget."""
    from search.encoder import _batch_tokens, plan_batches

    lengths = np.array([256] * 300 + [40] * 700, dtype=np.int64)
    gpu = plan_batches(lengths, 512, _batch_tokens("auto", torch.device("cuda")))
    sizes = [stop - start for start, stop in gpu]
    assert sizes[0] == 128  # 32,768 tokens of full 256-token windows
    assert max(sizes) == 512  # short chunks fill the item limit instead
    assert sum(sizes) == len(lengths)
    cpu = plan_batches(lengths, 32, _batch_tokens("auto", torch.device("cpu")))
    assert max(stop - start for start, stop in cpu) == 25  # 1,024 // 40


def test_bulk_encoding_asks_for_the_devices_batch_size(
    tiny_model: TinyModelFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from search.catalog.engine import create_catalog_engine, upgrade
    from search.embedding_cache import embed_cached

    encoder = Encoder(tiny_model())
    asked: list[int] = []
    encode = encoder.encode

    def spy(texts: list[str], batch_size: int = 32, **kwargs: object) -> object:
        asked.append(batch_size)
        return encode(texts, batch_size=batch_size)

    monkeypatch.setattr(encoder, "encode", spy)
    engine = create_catalog_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    upgrade(engine)
    vectors, encoded = embed_cached(engine, encoder, ["a", "b"], ["one", "two"])
    assert encoded == 2
    assert sorted(vectors) == ["a", "b"]
    assert asked == [encoder.bulk_batch_size] == [32]


def test_threads_sharing_a_new_encoder_load_it_once(
    tiny_model: TinyModelFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker slots and UI sessions encode at once on one encoder."""
    import threading

    import search.encoder as encoder_module

    loads: list[str] = []
    load = encoder_module.AutoModel.from_pretrained

    def counted(*args: object, **kwargs: object) -> object:
        loads.append(str(args[0]))
        return load(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(encoder_module.AutoModel, "from_pretrained", counted)
    encoder = Encoder(tiny_model())
    start = threading.Barrier(4)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def encode() -> None:
        start.wait()
        try:
            results.append(encoder.encode(["a shared encoder", "loaded once"]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=encode) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(loads) == 1
    assert all(np.array_equal(r, results[0]) for r in results)
