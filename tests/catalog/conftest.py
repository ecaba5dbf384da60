"""Catalog fixtures: a fresh database per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import postgres_database
from sqlalchemy import Engine

from search.catalog.engine import create_catalog_engine


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
    for url in postgres_database():
        engine = create_catalog_engine(url)
        yield engine
        engine.dispose()
