"""Catalog reads and writes, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from search.access import Access
from search.catalog import repository as repo
from search.catalog.engine import upgrade
from search.catalog.models import Document, DocumentStatus, JobStatus

EVERYTHING = Access.unrestricted()


@pytest.fixture
def engine(empty_engine: Engine) -> Iterator[Engine]:
    upgrade(empty_engine)
    return empty_engine


def _document(source: str, version: str = "v1") -> Document:
    return Document(
        id=repo.document_id_for(source),
        source_path=source,
        title="A title",
        file_type="txt",
        status=DocumentStatus.INDEXED,
        active_version=version,
        tags=["alpha", "beta"],
        access_groups=["staff"],
    )


def test_document_ids_are_stable() -> None:
    assert repo.document_id_for("/a/b.txt") == repo.document_id_for("/a/b.txt")
    assert repo.document_id_for("/a/b.txt") != repo.document_id_for("/a/c.txt")


def test_documents_and_chunks_round_trip(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(_document("/docs/one.txt"))
        session.flush()
        doc_id = repo.document_id_for("/docs/one.txt")
        rows = [
            {
                "ordinal": i,
                "char_start": i * 10,
                "char_end": i * 10 + 9,
                "page": None,
                "token_count": 5,
                "text_hash": f"h{i}",
            }
            for i in range(3)
        ]
        repo.add_chunks(
            session, [{"document_id": doc_id, "version": "v1", **r} for r in rows]
        )
        session.commit()

    with Session(engine) as session:
        document = repo.get_document(session, doc_id)
        assert document is not None
        assert document.tags == ["alpha", "beta"]
        assert [c.ordinal for c in document.chunks] == [0, 1, 2]
        assert repo.count_active_chunks(session, EVERYTHING) == 3

        # A new version is written beside the old one, then replaces it.
        repo.add_chunks(session, [{"document_id": doc_id, "version": "v2", **rows[0]}])
        document.active_version = "v2"
        session.commit()
        assert repo.count_active_chunks(session, EVERYTHING) == 1
        repo.delete_chunks(session, doc_id, keep_version="v2")
        session.commit()
        session.expire_all()
        assert [(c.version, c.ordinal) for c in document.chunks] == [("v2", 0)]
        assert repo.count_documents(session, EVERYTHING) == {"indexed": 1}
        assert [
            d.source_path
            for d in repo.list_documents(session, EVERYTHING, under="/docs/")
        ] == ["/docs/one.txt"]
        assert repo.list_documents(session, EVERYTHING, under="/doc_") == []


def test_a_failed_read_keeps_the_indexed_version(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(_document("/docs/two.txt"))
        session.commit()
        repo.create_failed_document(
            session, "/docs/two.txt", "txt", "permission denied"
        )
        repo.create_failed_document(session, "/docs/new.pdf", "pdf", "corrupt PDF")
        session.commit()

        kept = repo.get_document(session, repo.document_id_for("/docs/two.txt"))
        assert kept is not None
        assert (kept.status, kept.error, kept.active_version) == (
            "failed",
            "permission denied",
            "v1",
        )
        new = repo.get_document(session, repo.document_id_for("/docs/new.pdf"))
        assert new is not None
        assert (new.status, new.active_version) == ("failed", None)


def test_embedding_cache_round_trip_and_duplicates(engine: Engine) -> None:
    vectors = {
        f"hash{i}": np.random.default_rng(i).random(8, dtype=np.float32)
        for i in range(3)
    }
    with Session(engine) as session:
        repo.put_cached_embeddings(session, "model-a", vectors)
        # Writing the same hashes again is harmless.
        repo.put_cached_embeddings(session, "model-a", {"hash0": vectors["hash1"]})
        session.commit()

        found = repo.get_cached_embeddings(
            session, "model-a", ["hash0", "hash2", "nope"]
        )
        assert set(found) == {"hash0", "hash2"}
        np.testing.assert_array_equal(found["hash0"], vectors["hash0"])
        assert repo.get_cached_embeddings(session, "model-b", ["hash0"]) == {}


def test_jobs_are_claimed_once_in_order(engine: Engine) -> None:
    with Session(engine) as session:
        first = repo.create_job(session, "ingest", {"paths": ["/a"]})
        second = repo.create_job(session, "ingest", {"paths": ["/b"]})
        session.commit()
        first_id, second_id = first.id, second.id

    with Session(engine) as one, Session(engine) as two:
        claimed_one = repo.claim_next_job(one, "worker-1")
        claimed_two = repo.claim_next_job(two, "worker-2")
        assert claimed_one is not None
        assert claimed_two is not None
        assert (claimed_one.id, claimed_two.id) == (first_id, second_id)
        assert repo.claim_next_job(one, "worker-1") is None

        repo.finish_job(one, claimed_one, {"documents": 1})
        repo.finish_job(two, claimed_two, None, error="boom")
        one.commit()
        two.commit()
        assert claimed_one.status == JobStatus.DONE
        assert (claimed_two.status, claimed_two.error) == (JobStatus.FAILED, "boom")
