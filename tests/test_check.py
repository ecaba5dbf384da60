"""``check`` and ``--repair``: each disagreement made by hand, found and mended."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TinyModelFactory, store_ids
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ingest.consistency import IngestRunningError, check, repair
from ingest.pipeline import IngestOptions, Ingestor, point_id
from search.app import App
from search.catalog import repository as repo
from search.catalog.models import Chunk, Document, Job, JobStatus
from search.cli.main import main
from search.settings import Settings
from search.stores.base import Filter, MatchAny, Point

TEXT = (
    "Back up the team share every night and keep copies on a second site. "
    "A mirror of two disks survives one failed disk but is not a backup. "
) * 8


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "backup.txt").write_text(TEXT, encoding="utf-8")
    (folder / "bread.md").write_text(
        "---\ntitle: Bread\n---\n" + "Bread rises because yeast makes gas. " * 12,
        encoding="utf-8",
    )
    (folder / "staff.md").write_text(
        "---\ngroups: [staff]\n---\n" + "Only staff read the rota. " * 10,
        encoding="utf-8",
    )
    return folder


def ingest(app: App, folder: Path) -> None:
    Ingestor(app).run([folder], IngestOptions(prune=True))


def points_of(app: App, path: Path) -> list[Point]:
    """The points of one document, with vectors made up (payloads are real)."""
    document_id = repo.document_id_for(str(path.resolve()))
    found, _ = app.store.scroll(
        app.collection, Filter(must=(MatchAny("doc_id", (document_id,)),)), limit=999
    )
    vector = np.ones(app.encoder.dimension, dtype=np.float32)
    return [Point(p.id, vector, p.payload) for p in found]


def test_an_index_ingested_whole_is_consistent(app: App, docs: Path) -> None:
    ingest(app, docs)
    report = check(app)
    assert report.consistent, report.lines()
    assert report.lines() == []
    assert report.documents == 3
    assert report.points == len(store_ids(app)) > 3


def test_missing_points_are_written_again(app: App, docs: Path) -> None:
    ingest(app, docs)
    before = store_ids(app)
    lost = [p.id for p in points_of(app, docs / "backup.txt")][:3]
    app.store.delete(app.collection, lost)

    report = check(app)
    assert not report.consistent
    assert sorted(i for ids in report.missing.values() for i in ids) == sorted(lost)
    assert report.lines()[0].startswith("missing points: 3 of 1 document ")

    after = repair(app)
    assert after.consistent, after.lines()
    assert after.repaired["documents_rewritten"] == 1
    assert store_ids(app) == before


def test_stray_points_are_orphans_and_deleted(app: App, docs: Path) -> None:
    ingest(app, docs)
    before = store_ids(app)
    stray = points_of(app, docs / "bread.md")[0]
    ghost_id = point_id("no-such-document", "v", 0)
    payload = stray.payload | {"doc_id": "no-such-document"}
    app.store.upsert(app.collection, [Point(ghost_id, stray.vector, payload)])

    report = check(app)
    assert report.orphans == [ghost_id]
    assert repair(app).consistent
    assert store_ids(app) == before


def test_dropped_chunk_rows_are_found_and_written_again(app: App, docs: Path) -> None:
    ingest(app, docs)
    before = store_ids(app)
    document_id = repo.document_id_for(str((docs / "backup.txt").resolve()))
    with Session(app.engine) as session:
        session.execute(
            delete(Chunk).where(Chunk.document_id == document_id, Chunk.ordinal < 2)
        )
        session.commit()

    report = check(app)
    count, rows = report.miscounted[document_id]
    assert count == rows + 2
    assert len(report.orphans) == 2  # their points: no row knows them now
    assert repair(app).consistent
    assert store_ids(app) == before


def test_group_drift_is_an_access_disagreement(app: App, docs: Path) -> None:
    ingest(app, docs)
    public = points_of(app, docs / "bread.md")
    assert {tuple(p.payload["groups"]) for p in public} == {("*",)}
    drifted = [
        Point(p.id, p.vector, p.payload | {"groups": ["*", "x"]}) for p in public
    ]
    app.store.upsert(app.collection, drifted[:2])

    report = check(app)
    assert sum(len(v) for v in report.group_drift.values()) == 2
    assert any(line.startswith("access drift: 2 points") for line in report.lines())
    assert repair(app).consistent
    assert {tuple(p.payload["groups"]) for p in points_of(app, docs / "bread.md")} == {
        ("*",)
    }
    staff = points_of(app, docs / "staff.md")
    assert {tuple(p.payload["groups"]) for p in staff} == {("staff",)}


def test_leftovers_of_an_inactive_version_are_swept(app: App, docs: Path) -> None:
    """What a crash between switching versions and deleting the old leaves."""
    ingest(app, docs)
    before = store_ids(app)
    document_id = repo.document_id_for(str((docs / "bread.md").resolve()))
    with Session(app.engine) as session:
        rows = session.scalars(select(Chunk).where(Chunk.document_id == document_id))
        old = [
            {
                "document_id": document_id,
                "version": "old",
                "ordinal": r.ordinal,
                "char_start": r.char_start,
                "char_end": r.char_end,
                "token_count": r.token_count,
                "text_hash": r.text_hash,
            }
            for r in rows
        ]
        repo.add_chunks(session, old)
        session.commit()
    stale = [
        Point(point_id(document_id, "old", p.payload["ordinal"]), p.vector, p.payload)
        for p in points_of(app, docs / "bread.md")
    ]
    app.store.upsert(app.collection, [*stale])

    report = check(app)
    assert report.inactive_rows == {document_id: len(old)}
    assert len(report.leftovers) == len(stale)
    assert report.orphans == []

    # The next ingest run sweeps them, though no file changed.
    ingest(app, docs)
    assert check(app).consistent
    assert store_ids(app) == before


def test_repair_removes_a_document_whose_file_is_gone(app: App, docs: Path) -> None:
    ingest(app, docs)
    target = docs / "backup.txt"
    app.store.delete(app.collection, [p.id for p in points_of(app, target)][:1])
    target.unlink()

    after = repair(app)
    assert after.consistent
    assert after.repaired["documents_removed"] == 1
    with Session(app.engine) as session:
        assert repo.get_document(session, repo.document_id_for(str(target))) is None


def test_repair_deletes_drift_it_cannot_rewrite(app: App, docs: Path) -> None:
    """A file changed since it was indexed: its drifted points go (fail closed)."""
    ingest(app, docs)
    target = docs / "bread.md"
    drifted = [
        Point(p.id, p.vector, p.payload | {"groups": ["x"]})
        for p in points_of(app, target)
    ]
    app.store.upsert(app.collection, drifted)
    target.write_text("New text about bread, not yet ingested.", encoding="utf-8")

    after = repair(app)
    assert not after.consistent
    assert after.group_drift == {}
    assert after.repaired["drifted_points_deleted"] == len(drifted)
    assert after.problems == [
        f"{target.resolve()}: the file changed since it was indexed; ingest it again"
    ]
    # An ingest brings the new version; then all agree.
    ingest(app, docs)
    assert check(app).consistent


def test_interrupted_removals_are_finished(app: App, docs: Path) -> None:
    ingest(app, docs)
    target = docs / "staff.md"
    document_id = repo.document_id_for(str(target.resolve()))
    with Session(app.engine) as session:
        row = session.get(Document, document_id)
        assert row is not None
        row.status, row.active_version = "removing", None
        session.commit()

    report = check(app)
    assert report.removals == [document_id]
    assert report.orphans == []
    assert repair(app).consistent
    with Session(app.engine) as session:
        assert session.get(Document, document_id) is None


def test_repair_waits_for_running_jobs_on_a_server_store(
    tmp_path: Path, tiny_model: TinyModelFactory, docs: Path
) -> None:
    """With a shared store, work in progress of another worker is no leftover."""
    from qdrant_client import QdrantClient

    from search.stores.server import ServerStore

    settings = Settings(
        data_dir=tmp_path / "data",
        model=str(tiny_model()),
        qdrant_url="http://qdrant.invalid:6333",
    )
    app = App(settings, store=ServerStore(QdrantClient(":memory:")))
    try:
        ingest(app, docs)
        with Session(app.engine) as session:
            job = repo.create_job(session, "ingest", {"paths": []})
            job.status = JobStatus.RUNNING
            session.commit()
            job_id = job.id
        target = docs / "bread.md"
        app.store.delete(app.collection, [p.id for p in points_of(app, target)][:1])

        report = check(app)
        assert report.running_jobs == [job_id]
        with pytest.raises(IngestRunningError, match=f"jobs {job_id} are running"):
            repair(app, report)
        with Session(app.engine) as session:
            row = session.get(Job, job_id)
            assert row is not None
            row.status = JobStatus.DONE
            session.commit()
        assert repair(app).consistent
    finally:
        app.close()


def test_the_check_command(
    tmp_path: Path,
    tiny_model: TinyModelFactory,
    docs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SEMSEARCH_MODEL", str(tiny_model()))
    data = tmp_path / "data"
    app = App(Settings(data_dir=data, model=str(tiny_model())))
    ingest(app, docs)
    lost = [p.id for p in points_of(app, docs / "backup.txt")][:2]
    app.store.delete(app.collection, lost)
    app.close()
    argv = ["--data-dir", str(data), "check"]

    assert main(argv) == 1
    assert capsys.readouterr().out.splitlines() == [
        "missing points: 2 of 1 document (repair writes them again from the files)",
        "run `semsearch check --repair` to mend it",
    ]

    assert main([*argv, "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["consistent"] is False
    assert result["missing_points"] == 2
    assert result["missing_in"] == [str((docs / "backup.txt").resolve())]

    assert main([*argv, "--repair"]) == 0
    out = capsys.readouterr().out
    assert "repaired: documents rewritten: 1" in out
    assert "agree now" in out

    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("catalog and store agree: 3 documents")
