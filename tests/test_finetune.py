"""Fine-tuning: training data, batches, the losses going down, the output folder.

The base model is the tiny random BERT of conftest.py, so that a few training
steps take seconds on the CPU. The trained folder is held to what the rest of
semsearch needs of it: sentence-transformers and :class:`search.Encoder` load
it alike, a seed makes it reproducible, and a failed run leaves nothing behind.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TinyModelFactory
from safetensors.torch import load_file

from search import Encoder
from search.cli.main import main
from search.errors import InvalidInputError
from search.finetune import (
    LOG_FILE,
    PROVENANCE_FILE,
    Example,
    TrainableModel,
    TrainConfig,
    TrainResult,
    batches,
    cosine_loss,
    finetune,
    load_examples,
    mnrl_loss,
)
from search.models import model_identity

ANIMALS = (
    "cat",
    "dog",
    "horse",
    "bird",
    "fish",
    "cow",
    "sheep",
    "goat",
    "mouse",
    "lion",
    "tiger",
    "bear",
    "wolf",
    "fox",
    "duck",
    "frog",
)
# Related pairs: the same animal in two phrasings.
PAIRS = [Example(f"the {a} sat", f"a {a} is sitting") for a in ANIMALS]
# Scored pairs: related (0.9) and unrelated (0.0) in turn.
SCORED = [
    example
    for i, animal in enumerate(ANIMALS)
    for example in (
        Example(f"the {animal} sat", f"a {animal} is sitting", score=0.9),
        Example(f"the {animal} sat", f"stock prices fell on day {i}", score=0.0),
    )
]
TRAINING = TrainConfig(epochs=8, batch_size=8, learning_rate=1e-3, seed=0)
SHORT = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-3, seed=0)
PROBES = ["the cat sat", "a dog is sitting", "stock prices fell", "Hi"]

Loss = Callable[[TrainableModel, Sequence[Example]], torch.Tensor]


def ranking(model: TrainableModel, batch: Sequence[Example]) -> torch.Tensor:
    return mnrl_loss(model, batch, TRAINING.scale)


def mean_loss(folder: Path, examples: Sequence[Example], loss: Loss) -> float:
    """The loss of a saved model over fixed batches of 8, in eval mode."""
    model = TrainableModel(folder, device="cpu")
    model.model.eval()
    fixed = [examples[i : i + 8] for i in range(0, len(examples), 8)]
    with torch.no_grad():
        return sum(float(loss(model, batch)) for batch in fixed) / len(fixed)


def write_jsonl(path: Path, records: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def train(
    base: Path,
    examples: Sequence[Example],
    out: Path,
    config: TrainConfig = SHORT,
    overwrite: bool = False,
) -> TrainResult:
    return finetune(base, examples, out, config, overwrite=overwrite, progress=False)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    """Temporary folders of a fine-tune (work in progress, replaced models)."""
    return [
        p.name for p in parent.iterdir() if ".partial-" in p.name or ".old-" in p.name
    ]


@pytest.fixture(scope="module")
def trained(
    tiny_model: TinyModelFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, TrainResult]]:
    """The tiny model trained on PAIRS with TRAINING (mnrl), once per module."""
    out = tmp_path_factory.mktemp("trained") / "model"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield out, train(tiny_model(), PAIRS, out, TRAINING)


# -- training data -------------------------------------------------------


def write_beir(folder: Path) -> Path:
    folder.mkdir()
    write_jsonl(
        folder / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Cats", "text": "cats purr when content"},
            {"_id": "d2", "title": "", "text": "a kitten is a young cat"},
            {"_id": "d3", "text": "dogs bark at strangers"},
            {"_id": "d4", "title": "Fish", "text": "fish swim in schools"},
        ],
    )
    write_jsonl(
        folder / "queries.jsonl",
        [
            {"_id": "q1", "text": "what do cats do"},
            {"_id": "q2", "text": "why do dogs bark"},
            {"_id": "q3", "text": "how do fish swim"},
        ],
    )
    (folder / "qrels").mkdir()
    (folder / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        "q1\td1\t1\n"
        "q1\td2\t2\n"
        "q2\td3\t1\n"
        "q3\td4\t0\n"  # judged not relevant
        "q2\td9\t1\n"  # no such document
        "q9\td1\t1\n",  # no such query
        encoding="utf-8",
    )
    return folder


def test_beir_folder_gives_one_pair_per_relevant_judgement(tmp_path: Path) -> None:
    examples = load_examples(write_beir(tmp_path / "beir"))

    pairs = Counter((e.first, e.second.split("\n")[-1]) for e in examples)
    assert pairs == Counter(
        {
            ("what do cats do", "cats purr when content"): 1,
            ("what do cats do", "a kitten is a young cat"): 1,
            ("why do dogs bark", "dogs bark at strangers"): 1,
        }
    )
    titled = next(e for e in examples if "purr" in e.second)
    assert "Cats" in titled.second  # the title is part of the passage
    assert all(e.negative is None and e.score is None for e in examples)


def test_beir_folder_without_a_train_split_is_refused(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    (folder / "qrels" / "train.tsv").rename(folder / "qrels" / "test.tsv")
    with pytest.raises(InvalidInputError, match=r"no .*qrels/train\.tsv"):
        load_examples(folder)


def test_json_lines_in_every_accepted_shape(tmp_path: Path) -> None:
    source = tmp_path / "pairs.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps({"query": "q1", "passage": "p1"}),
                "",
                json.dumps({"anchor": "a2", "positive": "p2", "negative": "n2"}),
                json.dumps({"text1": "t3", "text2": "u3", "score": 0.5}),
                json.dumps({"sentence1": "s4", "sentence2": "v4", "score": -1}),
                json.dumps({"query": "q5", "passage": "p5", "score": 1}),
                json.dumps(["a6", "b6"]),
                json.dumps(["a7", "b7", 0.25]),
                "   ",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    assert load_examples(source) == [
        Example("q1", "p1"),
        Example("a2", "p2", negative="n2"),
        Example("t3", "u3", score=0.5),
        Example("s4", "v4", score=-1.0),
        Example("q5", "p5", score=1.0),
        Example("a6", "b6"),
        Example("a7", "b7", score=0.25),
    ]


def test_scored_lines_are_accepted_by_the_cosine_loss(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "scored.jsonl",
        [{"text1": "a", "text2": "b", "score": 0.9}, ["c", "d", 0.0]],
    )
    examples = load_examples(source, loss="cosine")
    assert [e.score for e in examples] == [0.9, 0.0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"query": "q", "passage": ', "Expecting value"),
        ('{"query": "q"}', "expected query/passage"),
        ('{"question": "q", "answer": "a"}', "got answer, question"),
        ('{"query": "", "passage": "p"}', "non-empty strings"),
        ('{"query": "q", "passage": "   "}', "non-empty strings"),
        ('{"anchor": "a", "positive": "p", "negative": ""}', "non-empty strings"),
        ('{"query": 3, "passage": "p"}', "non-empty strings"),
        ('{"text1": "a", "text2": "b", "score": 1.5}', "outside [-1, 1]"),
        ('{"text1": "a", "text2": "b", "score": -2}', "outside [-1, 1]"),
        ('{"text1": "a", "text2": "b", "score": true}', "is not a number"),
        ('{"text1": "a", "text2": "b", "score": "0.5"}', "is not a number"),
        ('["a", "b", false]', "is not a number"),
        ('["a"]', "[text, text] or [text, text, score]"),
        ('["a", 2]', "[text, text] or [text, text, score]"),
        ('["a", ""]', "non-empty strings"),
        ("42", "a JSON object or list"),
    ],
)
def test_bad_lines_are_refused_with_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    source = tmp_path / "pairs.jsonl"
    good = json.dumps({"query": "q", "passage": "p"})
    source.write_text(f"{good}\n\n{line}\n{good}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError) as raised:
        load_examples(source)
    assert str(raised.value).startswith(f"{source}:3: ")
    assert message in str(raised.value)


def test_the_cosine_loss_refuses_pairs_without_a_score(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "mixed.jsonl",
        [{"text1": "a", "text2": "b", "score": 0.9}, {"query": "q", "passage": "p"}],
    )
    assert len(load_examples(source, loss="mnrl")) == 2
    with pytest.raises(InvalidInputError, match="1 of 2 without one"):
        load_examples(source, loss="cosine")
    with pytest.raises(InvalidInputError, match="needs a score on every example"):
        finetune(
            "unused-model",
            [Example("a", "b", score=0.9), Example("q", "p")],
            tmp_path / "out",
            TrainConfig(loss="cosine"),
            progress=False,
        )
    assert not (tmp_path / "out").exists()


def test_missing_or_empty_training_data_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(InvalidInputError, match=re.escape(f"{missing} does not exist")):
        load_examples(missing)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="holds no training examples"):
        load_examples(empty)
    with pytest.raises(InvalidInputError, match="is not a BEIR folder"):
        load_examples(tmp_path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"loss": "triplet"}, "unknown loss"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1}, "batch size"),
        ({"warmup": 1.0}, "warmup"),
        ({"learning_rate": 0.0}, "learning rate"),
    ],
)
def test_bad_settings_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        TrainConfig(**options)  # type: ignore[arg-type]


# -- batches -------------------------------------------------------------


def shared_queries() -> list[Example]:
    """Six queries with three relevant passages each; a few with negatives."""
    return [
        Example(
            f"query {q}",
            f"passage {q}.{p}",
            negative=f"passage {(q + 1) % 6}.0" if p == 0 and q % 2 else None,
        )
        for q in range(6)
        for p in range(3)
    ]


def texts_of(example: Example) -> list[str]:
    return [example.first, example.second] + (
        [example.negative] if example.negative else []
    )


def test_distinct_batches_never_repeat_a_text() -> None:
    examples = shared_queries()
    rng = random.Random(3)
    for _ in range(5):  # epochs: the rng moves on
        epoch = batches(examples, 4, rng, distinct=True)
        assert epoch
        for batch in epoch:
            texts = [t for example in batch for t in texts_of(example)]
            assert len(texts) == len(set(texts)), batch
            assert 2 <= len(batch) <= 4
        placed = Counter(e for batch in epoch for e in batch)
        assert max(placed.values()) == 1
        # Each query has three passages, so it is in at least three batches.
        assert len(epoch) >= 3
        # What is left out could not have made a batch of two.
        dropped = [e for e in examples if e not in placed]
        assert not any(
            not set(texts_of(a)) & set(texts_of(b))
            for i, a in enumerate(dropped)
            for b in dropped[i + 1 :]
        ), dropped


def test_one_unplaceable_example_does_not_drop_the_rest() -> None:
    # ("a", "b") shares a text with both others; those two share none.
    examples = [Example("a", "b"), Example("a", "c"), Example("d", "b")]
    for seed in range(10):  # whichever comes first
        epoch = batches(examples, 4, random.Random(seed), distinct=True)
        assert [sorted(e.first for e in b) for b in epoch] == [["a", "d"]], seed


def test_plain_batches_cover_every_example_once() -> None:
    examples = shared_queries()
    epoch = batches(examples, 4, random.Random(1), distinct=False)
    assert [len(b) for b in epoch] == [4, 4, 4, 4, 2]
    assert Counter(e for b in epoch for e in b) == Counter(examples)
    # With no text shared, distinct batches lose nothing either.
    unique = batches(PAIRS, 4, random.Random(1), distinct=True)
    assert [len(b) for b in unique] == [4, 4, 4, 4]
    assert sorted(e.first for b in unique for e in b) == sorted(e.first for e in PAIRS)


def test_a_lone_leftover_example_is_dropped() -> None:
    epoch = batches(PAIRS[:5], 2, random.Random(0), distinct=False)
    assert [len(b) for b in epoch] == [2, 2]


def test_the_seed_decides_the_batches() -> None:
    examples = shared_queries()

    def order(seed: int) -> list[list[Example]]:
        return batches(examples, 4, random.Random(seed), distinct=True)

    assert order(7) == order(7)
    assert order(7) != order(8)
    rng = random.Random(7)
    first, second = batches(examples, 4, rng, True), batches(examples, 4, rng, True)
    assert first == order(7)
    assert second != first  # every epoch is shuffled anew


# -- training ------------------------------------------------------------


def test_training_lowers_the_ranking_loss(
    tiny_model: TinyModelFactory, trained: tuple[Path, TrainResult]
) -> None:
    out, result = trained
    before = mean_loss(tiny_model(), PAIRS, ranking)
    after = mean_loss(out, PAIRS, ranking)
    assert after < 0.5 * before, (before, after)
    assert result.epoch_losses[-1] < result.epoch_losses[0]
    assert result.examples == len(PAIRS)
    assert result.steps == TRAINING.epochs * len(PAIRS) // TRAINING.batch_size


def test_training_lowers_the_cosine_loss(
    tiny_model: TinyModelFactory, tmp_path: Path
) -> None:
    config = TrainConfig(
        loss="cosine", epochs=4, batch_size=8, learning_rate=1e-3, seed=0
    )
    result = train(tiny_model(), SCORED, tmp_path / "cosine", config)
    before = mean_loss(tiny_model(), SCORED, cosine_loss)
    after = mean_loss(tmp_path / "cosine", SCORED, cosine_loss)
    assert after < 0.25 * before, (before, after)
    assert result.steps == config.epochs * len(SCORED) // config.batch_size

    # The trained model ranks a related pair above an unrelated one.
    encoder = Encoder(tmp_path / "cosine", device="cpu", precision="fp32")
    query, related, unrelated = encoder.encode(
        ["the cat sat", "a cat is sitting", "stock prices fell on day 0"]
    )
    assert float(query @ related) > float(query @ unrelated)


# -- the output folder ---------------------------------------------------


def test_the_output_loads_in_sentence_transformers_and_the_encoder_alike(
    trained: tuple[Path, TrainResult],
) -> None:
    from sentence_transformers import SentenceTransformer

    out, _ = trained
    reference = SentenceTransformer(str(out), device="cpu").encode(
        PROBES, normalize_embeddings=True, convert_to_numpy=True
    )
    ours = Encoder(out, device="cpu", precision="fp32").encode(PROBES)
    assert ours.shape == (len(PROBES), 32)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_the_output_is_a_complete_sentence_transformers_folder(
    tiny_model: TinyModelFactory, trained: tuple[Path, TrainResult]
) -> None:
    base = tiny_model()
    out, _ = trained
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
    ):
        assert (out / name).is_file(), name
    assert json.loads((out / "modules.json").read_text()) == json.loads(
        (base / "modules.json").read_text()
    )
    assert json.loads((out / "1_Pooling" / "config.json").read_text()) == json.loads(
        (base / "1_Pooling" / "config.json").read_text()
    )
    st_config = json.loads((out / "sentence_bert_config.json").read_text())
    assert st_config["max_seq_length"] == 32


def test_the_output_folder_has_the_usual_permissions(
    trained: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    # The Docker image reads models as its own user (uid 10001).
    out, _ = trained
    plain = tmp_path / "plain"
    plain.mkdir()  # the mode the umask gives a new folder
    assert oct(out.stat().st_mode & 0o777) == oct(plain.stat().st_mode & 0o777)


def test_the_training_log_has_one_line_per_step(
    trained: tuple[Path, TrainResult],
) -> None:
    out, result = trained
    rows = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, result.steps + 1))
    assert {r["epoch"] for r in rows} == set(range(1, TRAINING.epochs + 1))
    assert [r["epoch"] for r in rows] == sorted(r["epoch"] for r in rows)
    assert all(math.isfinite(r["loss"]) and r["loss"] >= 0 for r in rows)
    rates = [r["lr"] for r in rows]
    assert all(0 <= lr <= TRAINING.learning_rate for lr in rates)
    assert max(rates) > rates[-1]  # warmup up to the peak, then decay
    for epoch, mean in enumerate(result.epoch_losses, start=1):
        losses = [r["loss"] for r in rows if r["epoch"] == epoch]
        assert sum(losses) / len(losses) == pytest.approx(mean, abs=1e-5)


def test_the_provenance_records_the_config_and_seed(
    tiny_model: TinyModelFactory, trained: tuple[Path, TrainResult]
) -> None:
    out, result = trained
    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    assert provenance["config"] == asdict(TRAINING)
    assert provenance["config"]["seed"] == 0
    assert provenance["base"] == str(tiny_model().resolve())
    assert provenance["steps"] == result.steps
    assert provenance["examples"] == len(PAIRS)
    assert provenance["epoch_losses"] == pytest.approx(result.epoch_losses, abs=1e-5)
    assert provenance["max_seq_length"] == 32


def test_training_changes_the_embeddings(
    tiny_model: TinyModelFactory, trained: tuple[Path, TrainResult]
) -> None:
    out, _ = trained
    base = Encoder(tiny_model(), device="cpu", precision="fp32").encode(PROBES)
    tuned = Encoder(out, device="cpu", precision="fp32").encode(PROBES)
    assert np.abs(base - tuned).max() > 1e-2


# -- reproducibility and safety ------------------------------------------


def test_the_same_seed_trains_the_same_weights(
    tiny_model: TinyModelFactory, trained: tuple[Path, TrainResult], tmp_path: Path
) -> None:
    first, result = trained
    again = train(tiny_model(), PAIRS, tmp_path / "again", TRAINING)
    assert again.epoch_losses == result.epoch_losses
    weights = load_file(str(first / "model.safetensors"))
    repeated = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert weights.keys() == repeated.keys()
    assert all(torch.equal(weights[k], repeated[k]) for k in weights)

    other = train(
        tiny_model(),
        PAIRS,
        tmp_path / "other",
        TrainConfig(epochs=1, batch_size=8, learning_rate=1e-3, seed=1),
    )
    assert other.epoch_losses[0] != result.epoch_losses[0]
    different = load_file(str(tmp_path / "other" / "model.safetensors"))
    assert not all(torch.equal(weights[k], different[k]) for k in weights)


def test_a_filled_out_folder_needs_overwrite(
    tiny_model: TinyModelFactory, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    (out / "sub").mkdir()
    (out / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = folder_bytes(out)

    with pytest.raises(InvalidInputError, match="--overwrite"):
        train(tiny_model(), PAIRS, out)
    assert folder_bytes(out) == before
    assert leftovers(tmp_path) == []

    with pytest.raises(InvalidInputError, match="is not a folder"):
        train(tiny_model(), PAIRS, out / "notes.txt", overwrite=True)

    train(tiny_model(), PAIRS, out, overwrite=True)
    assert not (out / "notes.txt").exists()
    assert (out / "model.safetensors").is_file()
    assert leftovers(tmp_path) == []


def test_an_empty_out_folder_is_used_without_overwrite(
    tiny_model: TinyModelFactory, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    out.mkdir()
    train(tiny_model(), PAIRS[:4], out, TrainConfig(epochs=1, batch_size=2))
    assert (out / "model.safetensors").is_file()
    assert leftovers(tmp_path) == []


def test_a_failure_while_training_leaves_nothing_behind(
    tiny_model: TinyModelFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import search.finetune

    calls: list[int] = []

    def failing(
        model: TrainableModel, batch: Sequence[Example], scale: float
    ) -> torch.Tensor:
        calls.append(len(batch))
        if len(calls) > 1:
            raise RuntimeError("out of memory (simulated)")
        return mnrl_loss(model, batch, scale)

    monkeypatch.setattr(search.finetune, "mnrl_loss", failing)
    parent = tmp_path / "models"
    with pytest.raises(RuntimeError, match="simulated"):
        train(tiny_model(), PAIRS, parent / "new")
    assert len(calls) == 2
    assert sorted(os.listdir(parent)) == []

    # A model already there survives a failed attempt to replace it.
    kept = parent / "kept"
    shutil.copytree(tiny_model(), kept)
    before = folder_bytes(kept)
    calls.clear()
    with pytest.raises(RuntimeError, match="simulated"):
        train(tiny_model(), PAIRS, kept, overwrite=True)
    assert folder_bytes(kept) == before
    assert sorted(os.listdir(parent)) == ["kept"]


def test_too_few_examples_for_a_batch_are_refused(
    tiny_model: TinyModelFactory, tmp_path: Path
) -> None:
    # Two examples sharing a query can never be in one distinct batch.
    lonely = [Example("q", "p1"), Example("q", "p2")]
    with pytest.raises(InvalidInputError, match="too few examples"):
        train(tiny_model(), lonely, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


# -- the command line ----------------------------------------------------


def run_cli(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_trains_and_reports_json(
    tiny_model: TinyModelFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(
        tmp_path / "pairs.jsonl",
        [{"query": e.first, "passage": e.second} for e in PAIRS[:8]],
    )
    out = tmp_path / "tuned"
    code, stdout, err = run_cli(
        [
            "finetune",
            "--train",
            str(source),
            "--base",
            str(tiny_model()),
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--out",
            str(out),
            "--json",
        ],
        capsys,
    )
    assert code == 0, err
    report = json.loads(stdout)
    assert report["out"] == str(out)
    assert report["examples"] == 8
    assert report["steps"] == 2
    assert len(report["epoch_losses"]) == 1
    assert report["epoch_losses"][0] > 0
    provenance = json.loads((out / PROVENANCE_FILE).read_text())
    assert provenance["source"] == str(source)
    assert provenance["config"]["batch_size"] == 4
    assert Encoder(out, device="cpu", precision="fp32").encode(PROBES).shape == (4, 32)


@pytest.mark.parametrize(
    ("records", "extra", "message"),
    [
        (None, [], "does not exist"),
        (["not json at all"], [], "pairs.jsonl:1: "),
        ([{"query": "q", "passage": "p"}], ["--loss", "cosine"], "needs a score"),
        ([{"query": "q", "passage": "p"}], ["--epochs", "0"], "epochs must be"),
    ],
)
def test_cli_errors_are_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    records: list[object] | None,
    extra: list[str],
    message: str,
) -> None:
    source = tmp_path / "pairs.jsonl"
    if records is not None:
        source.write_text(
            "".join(
                (r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records
            )
        )
    code, stdout, err = run_cli(
        ["finetune", "--train", str(source), "--out", str(tmp_path / "o"), *extra],
        capsys,
    )
    assert code == 1
    assert stdout == ""
    assert err.count("\n") == 1
    assert err.startswith("semsearch: error: ")
    assert message in err
    assert not (tmp_path / "o").exists()


# -- model identity ------------------------------------------------------


def test_identity_follows_the_weights(
    tiny_model: TinyModelFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model(), folder)
    original = model_identity(folder)
    assert original.startswith("model-")

    # Trained again into the same folder: a new identity.
    train(tiny_model(), PAIRS, folder, overwrite=True)
    retrained = model_identity(folder)
    assert retrained != original
    assert retrained.startswith("model-")

    # The same name elsewhere with one byte of the weights changed.
    twin = tmp_path / "twin" / "model"
    shutil.copytree(folder, twin)
    assert model_identity(twin) == retrained
    weights = bytearray((twin / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF
    (twin / "model.safetensors").write_bytes(bytes(weights))
    assert model_identity(twin) != retrained


def test_identity_ignores_notes_and_logs(
    tiny_model: TinyModelFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model(), folder)
    original = model_identity(folder)
    (folder / "README.md").write_text("notes", encoding="utf-8")
    (folder / LOG_FILE).write_text('{"step": 1}\n', encoding="utf-8")
    (folder / PROVENANCE_FILE).write_text("{}", encoding="utf-8")
    assert model_identity(folder) == original


def test_one_folder_by_two_paths_is_one_identity(
    tiny_model: TinyModelFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model(), folder)
    link = tmp_path / "link"
    link.symlink_to(folder, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    identity = model_identity(folder)
    assert model_identity(link) == identity
    assert model_identity("./model") == identity
    assert model_identity(str(folder) + "/") == identity


def test_a_registered_model_is_known_by_its_name(minilm_path: Path) -> None:
    assert model_identity("all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert model_identity("sentence-transformers/all-MiniLM-L6-v2") == (
        "all-MiniLM-L6-v2"
    )
    assert model_identity(minilm_path) == "all-MiniLM-L6-v2"


def test_a_file_that_is_not_utf8_is_refused_clearly(tmp_path: Path) -> None:
    source = tmp_path / "latin1.jsonl"
    source.write_bytes(
        b'{"query": "a", "passage": "b"}\n{"query": "caf\xe9", "passage": "c"}\n'
    )
    with pytest.raises(InvalidInputError, match=r"latin1.jsonl: not UTF-8"):
        load_examples(source)


def test_anchor_positive_with_a_score_keeps_the_score(tmp_path: Path) -> None:
    source = tmp_path / "scored.jsonl"
    source.write_text('{"anchor": "a", "positive": "b", "score": 0.5}\n')
    (example,) = load_examples(source, "cosine")
    assert example.score == 0.5


def test_hard_negatives_are_ranked_documents_never_judged_relevant(
    tmp_path: Path, tiny_model: TinyModelFactory
) -> None:
    from search.evaluation import load_beir
    from search.finetune import with_hard_negatives

    folder = write_beir(tmp_path / "beir")
    examples = load_examples(folder)
    data = load_beir(folder, split="train")
    mined = with_hard_negatives(folder, examples, tiny_model(), skip=0)

    assert [(e.first, e.second) for e in mined] == [
        (e.first, e.second) for e in examples
    ]
    query_ids = {text: qid for qid, text in data.queries.items()}
    for example in mined:
        assert example.negative is not None
        judged = data.qrels[query_ids[example.first]]
        relevant = {
            data.corpus[d] for d, r in judged.items() if r > 0 and d in data.corpus
        }
        assert example.negative not in relevant
        assert example.negative in data.corpus.values()
    # Passing over more documents than there are leaves the pairs as they were.
    assert all(
        e.negative is None
        for e in with_hard_negatives(folder, examples, tiny_model(), skip=10)
    )
