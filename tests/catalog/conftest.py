"""Catalog fixtures: a fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL is the one at ``SEMSEARCH_TEST_POSTGRES`` (default: the local
server these machines run, 127.0.0.1:5432, trust auth). Each test gets a
database of its own, dropped afterwards. Where no server answers, the
PostgreSQL cases fail in CI (``CI`` set) and are skipped elsewhere.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from search.catalog.engine import create_catalog_engine

ADMIN_URL = os.environ.get(
    "SEMSEARCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _postgres_database() -> Iterator[str]:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = f"semsearch_test_{uuid.uuid4().hex[:12]}"
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        admin.dispose()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no PostgreSQL at {ADMIN_URL}: {exc.orig}")
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database of either backend."""
    if request.param == "sqlite":
        engine = create_catalog_engine(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
        yield engine
        engine.dispose()
        return
    for url in _postgres_database():
        engine = create_catalog_engine(url)
        yield engine
        engine.dispose()
