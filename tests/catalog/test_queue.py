"""The job queue: claims race safely, leases expire, heartbeats keep them.

On PostgreSQL, workers claim with ``FOR UPDATE SKIP LOCKED``; on SQLite a
conditional update decides each race. Both are held to the same results.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import postgres_database
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from search.catalog import repository as repo
from search.catalog.engine import create_catalog_engine, upgrade
from search.catalog.models import Job, JobStatus, utcnow


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_catalog_engine(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    for url in postgres_database():
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = create_catalog_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()


def _queue(engine: Engine, count: int) -> list[int]:
    with Session(engine) as session:
        ids = [repo.create_job(session, "ingest", {"n": n}).id for n in range(count)]
        session.commit()
    return ids


def test_workers_claiming_at_once_take_each_job_exactly_once(engine: Engine) -> None:
    ids = _queue(engine, 40)
    claims: list[tuple[str, int]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(name: str) -> None:
        start.wait()
        with Session(engine, expire_on_commit=False) as session:
            while (job := repo.claim_next_job(session, name)) is not None:
                with lock:
                    claims.append((name, job.id))

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    taken = Counter(job_id for _, job_id in claims)
    assert sorted(taken) == ids
    assert set(taken.values()) == {1}
    with Session(engine) as session:
        rows = session.query(Job).all()
        assert {r.status for r in rows} == {JobStatus.RUNNING}
        assert {r.worker for r in rows} == {name for name, _ in claims}
        assert all(r.attempts == 1 and r.lease_expires_at is not None for r in rows)


def test_an_expired_lease_lets_another_worker_take_the_job(engine: Engine) -> None:
    [job_id] = _queue(engine, 1)
    with Session(engine, expire_on_commit=False) as session:
        first = repo.claim_next_job(session, "dead", lease_s=60)
        assert first is not None
        # While the lease holds, nobody else may take it.
        assert repo.claim_next_job(session, "other") is None
        later = utcnow() + timedelta(seconds=61)
        again = repo.claim_next_job(session, "other", now=later)
        assert again is not None
        assert again.id == job_id
        assert again.worker == "other"
        assert again.attempts == 2
        # The first worker's heartbeat now fails: the job is not its own.
        assert not repo.renew_lease(session, job_id, "dead")
        assert repo.renew_lease(session, job_id, "other")


def test_a_finished_or_requeued_job_holds_no_lease(engine: Engine) -> None:
    _queue(engine, 2)
    with Session(engine, expire_on_commit=False) as session:
        done = repo.claim_next_job(session, "w")
        stopped = repo.claim_next_job(session, "w")
        assert done is not None
        assert stopped is not None
        repo.finish_job(session, done, {"new": 1})
        repo.requeue_job(session, stopped, "Qdrant is unavailable", None)
        session.commit()
        assert done.lease_expires_at is None
        assert stopped.lease_expires_at is None
        far = utcnow() + timedelta(days=1)
        # The finished job is never taken again; the requeued one is.
        again = repo.claim_next_job(session, "w2", now=far)
        assert again is not None
        assert again.id == stopped.id
        assert repo.claim_next_job(session, "w2", now=far) is None


def test_the_heartbeat_keeps_the_lease(tmp_path: Path, engine: Engine) -> None:
    from ingest.jobs import Heartbeat

    class _App:
        def __init__(self) -> None:
            self.engine = engine
            self.settings = type("S", (), {"job_lease_s": 1.0})()

    _queue(engine, 1)
    with Session(engine, expire_on_commit=False) as session:
        job = repo.claim_next_job(session, "beating", lease_s=1.0)
        assert job is not None
    lease = repo.Lease(job.id, "beating", lease_s=1.0)
    with Heartbeat(_App(), lease):  # type: ignore[arg-type]
        time.sleep(2.5)
        with Session(engine) as session:
            assert repo.claim_next_job(session, "thief") is None
            row = session.get(Job, job.id)
            assert row is not None
            assert row.lease_expires_at is not None
    assert not lease.lost.is_set()
