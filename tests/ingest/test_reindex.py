"""Switching models: a new collection built beside the live one, then one switch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import TinyModelFactory, store_points
from sqlalchemy.orm import Session

from ingest import jobs
from ingest import reindex as reindex_module
from ingest.batches import BatchWriter
from ingest.consistency import check
from ingest.pipeline import IngestOptions, Ingestor
from ingest.reindex import Reindexer
from search.active_index import ACTIVE_ALIAS, index_for, load_active
from search.app import App, collection_name
from search.catalog.models import Job, JobStatus
from search.cli.main import main
from search.errors import ReindexRefusedError
from search.retrieval import Searcher
from search.settings import Settings
from search.stores.server import ServerStore

TEXTS = {
    "backup.txt": "Back up the team share every night and keep a copy off site.",
    "bread.txt": "Bread rises because yeast turns sugar into carbon dioxide.",
    "password.txt": "Reset a password from the account page with the emailed link.",
    "printer.txt": "The printer on the second floor needs a new toner cartridge.",
}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in TEXTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def other_model(tiny_model: TinyModelFactory) -> Path:
    """A second model: other pooling, so other vectors, and another identity."""
    return tiny_model(pooling=("cls",))


def ingest(app: App, folder: Path) -> Any:
    return Ingestor(app).run([folder], IngestOptions())


def test_reindex_builds_the_new_collection_and_switches_to_it(
    app: App, docs: Path, other_model: Path
) -> None:
    ingest(app, docs)
    before = app.active
    old_points = {p.id: p.payload for p in store_points(app)}

    summary = Reindexer(app, str(other_model)).run()

    assert summary.switched
    assert (summary.documents, summary.chunks) == (4, len(old_points))
    assert summary.previous == before.collection
    assert app.collection == index_for(other_model).collection != before.collection
    assert load_active(app.engine) == app.active
    # Same points, same payloads, the new model's vectors.
    new_points = {p.id: p.payload for p in store_points(app)}
    assert new_points == old_points
    encoder = app.encoder
    assert encoder.identity == index_for(other_model).identity
    query = encoder.encode("yeast and sugar")
    hits = app.store.search(app.collection, query, 1)
    assert hits[0].payload["text"].startswith("Bread rises")
    np.testing.assert_allclose(
        hits[0].score, float(query @ encoder.encode(hits[0].payload["text"])), atol=1e-4
    )
    # The old collection stays (switching back is cheap); the index is consistent.
    assert app.store.collection_exists(before.collection)
    assert check(app).consistent
    # A new process reads the switch from the catalog.
    again = App(app.settings, store=app.store)
    assert again.active == app.active
    again.engine.dispose()


def test_searches_stay_on_the_old_index_until_the_switch(
    app: App, docs: Path, other_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(app, docs)
    old = Searcher.for_app(app)
    before = app.active
    monkeypatch.setattr(reindex_module, "DOCUMENT_PAGE", 1)
    copies = 0
    original = Reindexer._copy

    def failing_copy(self: Reindexer, documents: Any, copied: Any, **kw: Any) -> None:
        nonlocal copies
        # While the copy runs, search answers from the live index.
        assert [h.title for h in old.search("yeast", 1, mode="dense")]
        copies += 1
        if copies == 3:
            raise RuntimeError("the machine went down")
        original(self, documents, copied, **kw)

    monkeypatch.setattr(Reindexer, "_copy", failing_copy)
    with pytest.raises(RuntimeError, match="went down"):
        Reindexer(app, str(other_model)).run()
    assert app.active == before
    assert load_active(app.engine) == before
    assert old.search("yeast", 1, mode="dense")

    # Run again: it goes on where it stopped (two documents are there), then switches.
    copies = 10
    copied_documents: list[int] = []

    def counting_copy(self: Reindexer, documents: Any, copied: Any, **kw: Any) -> None:
        copied_documents.append(len(documents))
        original(self, documents, copied, **kw)

    monkeypatch.setattr(Reindexer, "_copy", counting_copy)
    summary = Reindexer(app, str(other_model)).run()
    assert summary.switched
    assert sum(copied_documents) == 2
    assert app.active != before


def test_documents_ingested_during_the_copy_are_caught_up(
    app: App, docs: Path, other_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(app, docs)
    monkeypatch.setattr(reindex_module, "DOCUMENT_PAGE", 2)
    changed = False

    def progress(_: str) -> None:
        nonlocal changed
        if not changed:  # after the first page: a file changes, one is added
            changed = True
            (docs / "backup.txt").write_text("Backups now run every hour.")
            (docs / "coffee.txt").write_text("The coffee machine needs descaling.")
            (docs / "printer.txt").unlink()
            Ingestor(app).run([docs], IngestOptions(prune=True))

    summary = Reindexer(app, str(other_model), progress=progress).run()

    assert summary.switched
    texts = sorted(p.payload["text"] for p in store_points(app))
    assert texts == sorted(
        [
            "Backups now run every hour.",
            TEXTS["bread.txt"],
            TEXTS["password.txt"],
            "The coffee machine needs descaling.",
        ]
    )
    assert check(app).consistent


def test_an_ingest_across_the_switch_runs_again_on_the_new_index(
    app: App, docs: Path, other_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(app, docs)
    (docs / "coffee.txt").write_text("The coffee machine needs descaling.")
    original = BatchWriter._activate
    switched = False

    def activate_after_a_switch(self: BatchWriter, documents: Any) -> None:
        nonlocal switched
        if not switched:
            switched = True
            # Another process switches models between this batch's writes
            # and its activation.
            other = App(app.settings, store=app.store)
            Reindexer(other, str(other_model)).run()
            other.engine.dispose()
        original(self, documents)

    monkeypatch.setattr(BatchWriter, "_activate", activate_after_a_switch)
    job_id = jobs.enqueue(app, jobs.ingest_params([docs], IngestOptions()))
    summary = jobs.run_claimed(app, job_id)

    assert switched
    assert app.collection == index_for(other_model).collection
    assert summary.new == 1
    with Session(app.engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.status == JobStatus.DONE
    texts = {p.payload["text"] for p in store_points(app)}
    assert "The coffee machine needs descaling." in texts
    assert check(app).consistent


def test_switching_back_reuses_the_cache_and_the_old_collection(
    app: App, docs: Path, other_model: Path
) -> None:
    ingest(app, docs)
    first = app.active
    Reindexer(app, str(other_model)).run()
    (docs / "coffee.txt").write_text("The coffee machine needs descaling.")
    ingest(app, docs)

    back = Reindexer(app, first.model).run()

    assert back.switched
    assert app.active.collection == first.collection
    # Only the document added meanwhile was new to the first model.
    assert back.chunks_encoded == 1
    assert back.chunks_reused == 0
    assert len(store_points(app)) == 5
    assert check(app).consistent


def test_reindex_to_the_active_model_does_nothing(app: App, docs: Path) -> None:
    ingest(app, docs)
    summary = Reindexer(app, app.active.model).run()
    assert not summary.switched
    assert "already" in summary.note


def test_the_switch_moves_the_servers_alias(
    app: App, docs: Path, other_model: Path
) -> None:
    ingest(app, docs)
    Reindexer(app, str(other_model)).run()
    assert load_active(app.engine) == app.active
    if isinstance(app.store, ServerStore):
        assert app.store.alias_target(ACTIVE_ALIAS) == app.collection
    else:
        # One process holds the embedded store: the catalog row is its pointer.
        assert not hasattr(app.store, "point_alias")


# -- the gate --------------------------------------------------------------


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    """A small BEIR folder that a real model ranks well and a random one cannot."""
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    documents = {
        "d1": "Yeast ferments sugar and the dough rises with carbon dioxide.",
        "d2": "Nightly backups of the file server are copied to a second site.",
        "d3": "Forgotten passwords are reset through a link sent by email.",
        "d4": "Replace the toner when the printer shows a low toner warning.",
        "d5": "The train to the airport leaves every fifteen minutes.",
        "d6": "Tomatoes need full sun and regular watering in summer.",
    }
    queries = {
        "q1": "why does bread dough get bigger",
        "q2": "where are copies of our files kept",
        "q3": "I cannot remember my login secret",
        "q4": "the printout is faint",
        "q5": "how often is there a ride to the airport",
        "q6": "growing vegetables in the garden",
    }
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, text in documents.items():
            out.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for query_id, text in queries.items():
            out.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in range(1, 7)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return folder


def test_the_gate_refuses_a_worse_model(
    tmp_path: Path, docs: Path, beir: Path, tiny_model: TinyModelFactory
) -> None:
    app = App(Settings(data_dir=tmp_path / "data", model="all-MiniLM-L6-v2"))
    try:
        ingest(app, docs)
        before = app.active
        with pytest.raises(ReindexRefusedError, match="would drop"):
            Reindexer(app, str(tiny_model())).run(gate=beir)
        assert app.active == before == load_active(app.engine)
        assert not app.store.collection_exists(index_for(tiny_model()).collection)
    finally:
        app.close()


def test_the_gate_lets_a_better_model_through(
    tmp_path: Path, docs: Path, beir: Path, tiny_model: TinyModelFactory
) -> None:
    app = App(Settings(data_dir=tmp_path / "data", model=str(tiny_model())))
    try:
        ingest(app, docs)
        summary = Reindexer(app, "all-MiniLM-L6-v2").run(gate=beir)
        assert summary.switched
        assert summary.gate is not None
        scores = summary.gate["ndcg@10"]
        assert scores["after"] > scores["before"]
        assert app.active.model == "all-MiniLM-L6-v2"
    finally:
        app.close()


# -- the command -------------------------------------------------------------


@pytest.fixture
def ingested(
    tmp_path: Path,
    docs: Path,
    tiny_model: TinyModelFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    """A data dir the ingest command filled, the environment pointing at it."""
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEMSEARCH_MODEL", str(tiny_model()))
    assert main(["ingest", str(docs)]) == 0
    capsys.readouterr()
    return tmp_path / "data"


@pytest.mark.usefixtures("ingested")
def test_the_reindex_command_switches_and_reports(
    tmp_path: Path, other_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    assert main(["reindex", "--model", str(other_model), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["switched"]
    assert summary["documents"] == 4

    # SEMSEARCH_MODEL still names the first model: the catalog's setting wins,
    # and search runs on the new index.
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["collection"] == index_for(other_model).collection

    assert main(["reindex", "--model", str(other_model)]) == 0
    assert "already" in capsys.readouterr().out

    assert main(["reindex", "--model", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.usefixtures("ingested")
def test_the_jobs_listing_describes_a_reindex(
    other_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reindex", "--model", str(other_model)]) == 0
    capsys.readouterr()
    assert main(["jobs", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    reindex_row = next(r for r in rows if r["kind"] == "reindex")
    assert reindex_row["paths"] == [f"reindex to {other_model}"]
    assert reindex_row["summary_line"].startswith("switched to chunks-")


def test_a_model_with_a_shorter_window_is_named_in_a_warning(
    tmp_path: Path, docs: Path, tiny_model: TinyModelFactory
) -> None:
    (docs / "long.txt").write_text(" ".join(["word"] * 150), encoding="utf-8")
    app = App(Settings(data_dir=tmp_path / "data", model=str(tiny_model())))
    short = tiny_model(max_seq_length=8)
    try:
        ingest(app, docs)
        summary = Reindexer(app, str(short)).run()
        assert summary.switched
        assert any("reads 6" in w for w in summary.warnings)
        wide = Reindexer(app, str(tiny_model(pooling=("cls",)))).run()
        assert wide.warnings == []
    finally:
        app.close()


def test_an_index_from_before_the_setting_keeps_its_collection(
    tmp_path: Path, tiny_model: TinyModelFactory
) -> None:
    from search.catalog.models import Document, DocumentStatus

    folder = tiny_model()
    app = App(Settings(data_dir=tmp_path / "data", model=str(folder)))
    try:
        # A catalog filled before revision 0006: documents, no index recorded.
        with Session(app.engine) as session:
            session.add(
                Document(id="d1", source_path="/x", status=DocumentStatus.INDEXED)
            )
            session.commit()
        assert app.collection == collection_name(str(folder))
        assert app.collection != index_for(folder).collection
    finally:
        app.close()
    fresh = App(Settings(data_dir=tmp_path / "other", model=str(folder)))
    try:
        assert fresh.collection == index_for(folder).collection
    finally:
        fresh.close()
