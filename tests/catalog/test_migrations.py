"""The schema comes from the Alembic revisions alone, up and down, on both backends."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from search.catalog.engine import (
    current_revision,
    downgrade,
    head_revision,
    open_catalog,
    upgrade,
)
from search.catalog.models import Base
from search.settings import Settings

TABLES = {"documents", "chunks", "jobs", "embedding_cache", "alembic_version"}


def test_upgrade_to_head_and_back_down(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None

    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    assert set(inspect(empty_engine).get_table_names()) >= TABLES

    downgrade(empty_engine, "base")
    assert current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}

    # And up again: a downgrade leaves nothing behind that blocks an upgrade.
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()


def test_models_match_the_newest_revision(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection), Base.metadata
        )
    assert differences == []


@pytest.mark.parametrize("name", sorted(TABLES - {"alembic_version"}))
def test_constraints_follow_the_naming_convention(
    empty_engine: Engine, name: str
) -> None:
    upgrade(empty_engine)
    inspector = inspect(empty_engine)
    assert inspector.get_pk_constraint(name)["name"] in (f"pk_{name}", None)
    for foreign_key in inspector.get_foreign_keys(name):
        assert foreign_key["name"].startswith(f"fk_{name}_")


def test_processes_starting_together_migrate_once(tmp_path: Path) -> None:
    """Several starts on a new data dir (a worker and a command) must not race."""
    settings = Settings(data_dir=tmp_path / "data")

    def start() -> str | None:
        engine = open_catalog(settings)
        try:
            return current_revision(engine)
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=4) as pool:
        revisions = list(pool.map(lambda _: start(), range(4)))
    assert revisions == [head_revision()] * 4
