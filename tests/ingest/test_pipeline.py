"""Ingest end to end on the embedded default: idempotence, versions, failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TinyModelFactory
from sqlalchemy.orm import Session

from ingest.pipeline import IngestOptions, Ingestor, point_id
from search.access import Access, Principal
from search.app import App
from search.catalog import repository as repo
from search.filters import SearchFilters
from search.retrieval import Searcher
from search.settings import Settings
from search.stores.base import Filter, MatchAny

EVERYTHING = Access.unrestricted()


PARAGRAPHS = [
    "Back up the team share every night and keep copies on a second site.",
    "A mirror of two disks survives one failed disk but is not a backup.",
    "Reset a password from the account page with the emailed link.",
    "Bread rises because yeast turns sugar into carbon dioxide gas.",
]


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "notes").mkdir(parents=True)
    (folder / "backup.txt").write_text(
        "\n\n".join(PARAGRAPHS[:2]) * 6, encoding="utf-8"
    )
    (folder / "notes" / "bread.md").write_text(
        "---\ntitle: Bread\ntags: [food]\ndate: 2024-05-01\n---\n" + PARAGRAPHS[3],
        encoding="utf-8",
    )
    (folder / "notes" / "password.html").write_text(
        f"<html><head><title>Passwords</title></head><body><main><p>{PARAGRAPHS[2]}"
        "</p></main></body></html>",
        encoding="utf-8",
    )
    return folder


def ingest(app: App, *paths: Path, **options: object) -> object:
    return Ingestor(app).run(list(paths), IngestOptions(**options))  # type: ignore[arg-type]


def searcher(app: App) -> Searcher:
    return Searcher(app.encoder, app.store, app.engine, app.collection)


def test_ingest_then_rerun_costs_no_encoding(app: App, docs: Path) -> None:
    first = ingest(app, docs)
    assert (first.new, first.changed, first.unchanged, first.failed) == (3, 0, 0, 0)
    assert first.chunks == first.chunks_encoded + first.chunks_reused > 3
    assert app.store.count(app.collection) == first.chunks

    second = ingest(app, docs)
    assert (second.new, second.changed, second.unchanged) == (0, 0, 3)
    assert second.chunks_encoded == 0
    assert app.store.count(app.collection) == first.chunks


def test_a_changed_file_replaces_its_chunks_and_reuses_embeddings(
    app: App, docs: Path
) -> None:
    ingest(app, docs)
    target = docs / "backup.txt"
    old_text = target.read_text(encoding="utf-8")
    target.write_text(old_text + "\n\nA new closing paragraph about restores.", "utf-8")

    summary = ingest(app, docs)
    assert (summary.changed, summary.unchanged) == (1, 2)
    # Most chunk texts did not change: their embeddings come from the cache.
    assert summary.chunks_reused > summary.chunks_encoded

    document_id = repo.document_id_for(str(target.resolve()))
    with Session(app.engine) as session:
        document = repo.get_document(session, document_id)
        assert document is not None
        active = document.active_version
    points, _ = app.store.scroll(
        app.collection, Filter(must=(MatchAny("doc_id", (document_id,)),)), limit=1000
    )
    assert points
    assert {p.payload["version"] for p in points} == {active}
    assert len(points) == summary.chunks


def test_hits_of_an_inactive_version_are_never_returned(app: App, docs: Path) -> None:
    """A crash between writing new points and switching leaves them invisible."""
    ingest(app, docs)
    bread = str((docs / "notes" / "bread.md").resolve())
    document_id = repo.document_id_for(bread)
    stale = app.store.scroll(
        app.collection, Filter(must=(MatchAny("doc_id", (document_id,)),))
    )[0][0]
    ghost = stale.payload | {"version": "not-the-active-one", "text": "ghost"}
    from search.stores.base import Point

    vector = app.encoder.encode(PARAGRAPHS[3])
    app.store.upsert(
        app.collection, [Point(point_id(document_id, "ghost", 0), vector, ghost)]
    )
    hits = searcher(app).search(PARAGRAPHS[3], top_k=20)
    assert hits
    assert all(h.text != "ghost" for h in hits)


def test_filters_narrow_the_hits(app: App, docs: Path) -> None:
    ingest(app, docs / "backup.txt", tags=["ops"], groups=["staff"])
    ingest(app, docs / "notes")
    s = searcher(app)

    staff = Principal("ann", ("staff",))

    def paths(**filters: object) -> set[str]:
        hits = s.search(
            "disk",
            top_k=50,
            filters=SearchFilters(**filters),  # type: ignore[arg-type]
            principal=staff,
        )
        return {Path(h.path).name for h in hits}

    assert paths() == {"backup.txt", "bread.md", "password.html"}
    # Without a principal, only what is public (the staff file is not).
    public = s.search("disk", top_k=50)
    assert {Path(h.path).name for h in public} == {"bread.md", "password.html"}
    assert paths(file_types=("md", "html")) == {"bread.md", "password.html"}
    assert paths(tags=("food",)) == {"bread.md"}
    assert paths(tags=("food", "ops"), tags_mode="all") == set()
    assert paths(groups=("staff",)) == {"backup.txt"}
    assert paths(path_prefix=str((docs / "notes").resolve())) == {
        "bread.md",
        "password.html",
    }
    from datetime import date

    assert "bread.md" in paths(until=date(2024, 5, 1))
    assert "bread.md" not in paths(since=date(2024, 5, 2))


def test_bad_files_are_reported_and_lose_nothing(app: App, docs: Path) -> None:
    ingest(app, docs)
    before = app.store.count(app.collection)

    (docs / "binary.txt").write_bytes(b"\x00\x01\x02" * 1000)
    (docs / "empty.md").write_text("", encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")
    summary = ingest(app, docs, docs / "missing-folder")

    reasons = {Path(f["path"]).name: f["error"] for f in summary.failures}
    assert reasons["binary.txt"] == "binary file"
    assert reasons["empty.md"] == "empty file"
    assert "PDF" in reasons["broken.pdf"]
    assert reasons["missing-folder"] == "does not exist"
    assert summary.unchanged == 3
    assert app.store.count(app.collection) == before

    with Session(app.engine) as session:
        failed = repo.list_documents(session, EVERYTHING, status="failed")
        assert {Path(d.source_path).name for d in failed} == set(reasons)
        assert all(d.error for d in failed)


def test_prune_removes_documents_whose_files_are_gone(app: App, docs: Path) -> None:
    ingest(app, docs)
    (docs / "notes" / "bread.md").unlink()

    kept = ingest(app, docs)
    assert kept.removed == 0
    pruned = ingest(app, docs, prune=True)
    assert pruned.removed == 1
    hits = searcher(app).search("bread", top_k=50)
    assert all(not h.path.endswith("bread.md") for h in hits)
    with Session(app.engine) as session:
        assert repo.count_documents(session, EVERYTHING) == {"indexed": 2}


def test_unreadable_vanished_and_odd_encodings(
    app: App, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (docs / "utf16.txt").write_bytes("Grüße aus Köln, sagt der Text.".encode("utf-16"))
    (docs / "latin1.txt").write_bytes("Café crème et pâtisserie.".encode("latin-1"))
    (docs / "broken.docx").write_bytes(b"PK\x03\x04 not a real archive")
    (docs / "locked.txt").write_text("secret", encoding="utf-8")
    (docs / "gone.txt").write_text("here a moment ago", encoding="utf-8")

    import ingest.pipeline as pipeline

    real_hash = pipeline.file_hash

    def flaky_hash(path: Path, limits: object = None) -> str:
        if path.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(path))
        if path.name == "gone.txt":
            raise FileNotFoundError(2, "No such file", str(path))
        return real_hash(path, limits)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "file_hash", flaky_hash)
    summary = ingest(app, docs)

    reasons = {Path(f["path"]).name: f["error"] for f in summary.failures}
    assert reasons["locked.txt"] == "permission denied"
    assert reasons["gone.txt"] == "file vanished"
    assert "docx" in reasons["broken.docx"].lower()
    assert summary.new == 5  # the three documents, utf16.txt and latin1.txt
    texts = {h.text for h in searcher(app).search("Köln", top_k=50)}
    assert "Grüße aus Köln, sagt der Text." in texts
    assert "Café crème et pâtisserie." in texts


def test_a_repeated_query_is_encoded_once(
    app: App, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(app, docs)
    s = searcher(app)
    calls: list[object] = []
    real_encode = app.encoder.encode

    def counting_encode(texts: object, *args: object, **kwargs: object) -> object:
        calls.append(texts)
        return real_encode(texts, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app.encoder, "encode", counting_encode)
    first_page = s.search("disk backup", top_k=2)
    second_page = s.search("disk backup", top_k=2, offset=2)
    assert calls == ["disk backup"]
    first = {(h.document_id, h.chunk_ordinal) for h in first_page}
    second = {(h.document_id, h.chunk_ordinal) for h in second_page}
    assert len(first) == len(second) == 2
    assert first.isdisjoint(second)


def test_cached_embeddings_are_kept_per_precision(
    tmp_path: Path, tiny_model: TinyModelFactory, docs: Path
) -> None:
    """A copy of known text reuses embeddings of the same precision only."""
    model = str(tiny_model())

    def run(precision: str, folder: Path) -> object:
        settings = Settings(
            data_dir=tmp_path / "data", model=model, precision=precision
        )
        app = App(settings)
        try:
            return ingest(app, folder)
        finally:
            app.close()

    first = run("fp32", docs)
    copies = []
    for name in ("bf16-copy", "fp32-copy"):
        copy = tmp_path / name
        copy.mkdir()
        (copy / "backup.txt").write_bytes((docs / "backup.txt").read_bytes())
        copies.append(copy)

    other_precision = run("bf16", copies[0])
    same_precision = run("fp32", copies[1])

    assert first.chunks_encoded > 0
    # (Chunks repeated within the file count as reused in every run.)
    assert other_precision.chunks_encoded > 0
    assert same_precision.chunks_encoded == 0
    assert same_precision.chunks_reused == same_precision.chunks > 0
