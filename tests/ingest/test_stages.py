"""Reading, encoding and writing overlap, in order, and fail as one."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TinyModelFactory

import ingest.batches as batches
import ingest.pipeline as pipeline
from ingest.consistency import check
from ingest.pipeline import Ingestor
from ingest.stages import Stages
from search.app import App
from search.settings import Settings


class Killed(BaseException):
    """A test's stand-in for a kill: no handler catches it."""


@pytest.mark.parametrize("inline", [0, 1, 3])
def test_items_go_through_every_step_in_order(inline: int) -> None:
    seen: list[int] = []
    steps = [lambda n: n * 10, lambda n: n + 1, seen.append]
    stages = Stages(steps, depth=1, inline=inline)
    for n in range(50):
        stages.put(n)
    stages.close()
    assert seen == [n * 10 + 1 for n in range(50)]


def test_a_step_waits_for_the_producer_without_deadlock() -> None:
    """The second step needs an item the producer puts later: only steps that
    overlap with the producer get there (run in turn, this would hang)."""
    later = threading.Event()
    waited: list[bool] = []

    def slow(n: int) -> int:
        if n == 0:
            waited.append(later.wait(timeout=10))
        return n

    stages = Stages([slow, lambda n: n])
    stages.put(0)
    stages.put(1)
    later.set()
    stages.close()
    assert waited == [True]


@pytest.mark.parametrize("error", [ValueError("bad batch"), Killed()])
def test_the_first_error_stops_the_flow_and_reaches_the_caller(
    error: BaseException,
) -> None:
    written: list[int] = []

    def write(n: int) -> None:
        if n == 3:
            raise error
        written.append(n)

    def feed() -> None:
        for n in range(100):
            stages.put(n)
        stages.close()

    stages = Stages([lambda n: n, write], depth=1)
    with pytest.raises(type(error)) as raised:
        feed()
    assert raised.value is error
    with pytest.raises(type(error)):
        stages.close()
    # Nothing after the failed item was written.
    assert written == [0, 1, 2]


def test_ingest_reads_on_while_a_batch_is_encoded(
    tmp_path: Path,
    tiny_model: TinyModelFactory,
    passages: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first batch's encoding waits until the reader has gone on to later
    files; with reading and encoding in turn it would wait in vain."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    rng = random.Random(5)
    for i in range(12):
        text = "\n\n".join(rng.sample(passages, 4))
        (folder / f"doc-{i:02d}.txt").write_text(text, encoding="utf-8")
    monkeypatch.setattr(pipeline, "PENDING_CHUNKS", 4)

    reading_later_files = threading.Event()
    waited: list[bool] = []
    embed = batches.embed_cached

    def slow_embed(*args: Any, **kwargs: Any) -> Any:
        if not waited:
            waited.append(reading_later_files.wait(timeout=20))
        return embed(*args, **kwargs)

    monkeypatch.setattr(batches, "embed_cached", slow_embed)

    def progress(source: str) -> None:
        if Path(source).name == "doc-02.txt":
            reading_later_files.set()

    settings = Settings(
        data_dir=tmp_path / "data", model=str(tiny_model()), ingest_overlap="all"
    )
    app = App(settings)
    try:
        summary = Ingestor(app).run([folder], progress=progress)
        assert waited == [True]
        assert summary.new == 12
        assert summary.chunks_encoded + summary.chunks_reused == summary.chunks
        report = check(app)
        assert report.consistent, report.lines()
    finally:
        app.close()


def test_every_overlap_writes_the_same_index(
    tmp_path: Path, tiny_model: TinyModelFactory, passages: list[str]
) -> None:
    folder = tmp_path / "corpus"
    folder.mkdir()
    rng = random.Random(6)
    for i in range(9):
        (folder / f"doc-{i}.txt").write_text("\n\n".join(rng.sample(passages, 3)))
    model = str(tiny_model())
    indexes = {}
    for overlap in ("all", "write", "none"):
        settings = Settings(
            data_dir=tmp_path / overlap, model=model, ingest_overlap=overlap
        )
        app = App(settings)
        try:
            ingestor = Ingestor(app)
            assert ingestor.overlap() == overlap
            ingestor.run([folder])
            assert check(app).consistent
            points, _ = app.store.scroll(app.collection, limit=1000)
            indexes[overlap] = sorted((p.id, p.payload["text"]) for p in points)
        finally:
            app.close()
    assert indexes["all"] == indexes["write"] == indexes["none"]
    assert len(indexes["all"]) >= 9


def test_auto_overlap_follows_the_device_and_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def chosen(**settings: Any) -> str:
        return Ingestor(App(Settings(data_dir=tmp_path, **settings))).overlap()

    assert chosen(device="cpu") == "none"
    assert chosen(device="cpu", qdrant_url="http://qdrant:6333") == "write"
    assert chosen(device="cpu", ingest_overlap="all") == "all"
    monkeypatch.setattr(pipeline, "select_device", lambda _: torch.device("cuda"))
    assert chosen() == "all"
