"""Connecting to the catalog and bringing its schema to the newest revision.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy
timeout, so that a reader never blocks the ingest writer; PostgreSQL is used
through psycopg 3. The embedded catalog upgrades itself on first use; a server
catalog is upgraded on purpose with ``semsearch db upgrade``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import InterfaceError, OperationalError

from search.errors import CatalogError
from search.retry import CatalogUnavailableError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, first use must be alone
    fcntl = None  # type: ignore[assignment]
from search.settings import Settings

logger = logging.getLogger(__name__)


def migrations_dir() -> Path:
    import migrations

    return Path(migrations.__file__).parent


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


# PostgreSQL error classes that mean the connection, not the statement, failed:
# 08 connection exceptions, 57P01-03 a server shutting down or starting up.
_CONNECTION_SQLSTATES = ("08", "57P01", "57P02", "57P03")
# psycopg gives no SQLSTATE for a failed connect, only libpq's text: a server
# that answers "FATAL" refused us (a wrong password, no such database), which
# waiting does not cure, unless it is starting, stopping or full.
_PASSING_REFUSALS = ("starting up", "shutting down", "recovery", "too many")


def create_catalog_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL mode and its folder is made.

    On a server catalog, a connection that cannot be made or is lost raises
    :class:`~search.retry.CatalogUnavailableError` naming the server, from
    whichever statement met it, so that every caller (CLI, UI, worker) can
    say so and retry (search.retry).
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(
        engine,
        "handle_error",
        partial(_report_unreachable, catalog_address(engine.url)),
    )
    return engine


def catalog_address(url: URL | str) -> str:
    """Which catalog ``url`` names, without user or password.

    ``PostgreSQL at host:port/database``, or ``SQLite at path`` for the
    embedded catalog.
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return f"SQLite at {url.database}"
    name = "PostgreSQL" if url.get_backend_name() == "postgresql" else url.drivername
    return f"{name} at {url.host or 'localhost'}:{url.port or 5432}/{url.database}"


def _report_unreachable(address: str, context: ExceptionContext) -> None:
    """Raise a lost or refused connection as one clear, transient error."""
    if context.is_disconnect or _connection_failed(context):
        reason = _first_line(context.original_exception)
        raise CatalogUnavailableError(
            f"{address} is unreachable ({reason})"
        ) from context.original_exception


def _connection_failed(context: ExceptionContext) -> bool:
    if not isinstance(context.sqlalchemy_exception, (OperationalError, InterfaceError)):
        return False
    sqlstate = getattr(context.original_exception, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate).startswith(_CONNECTION_SQLSTATES)
    text = str(context.original_exception)
    return "FATAL:" not in text or any(p in text for p in _PASSING_REFUSALS)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def open_catalog(settings: Settings) -> Engine:
    """The catalog engine, at the newest schema.

    The embedded SQLite catalog is upgraded here on first use; a server
    catalog behind the newest revision raises :class:`CatalogError` saying to
    run ``semsearch db upgrade``, so that several workers never race to
    migrate a shared database.
    """
    engine = create_catalog_engine(settings.catalog_url)
    if settings.embedded_catalog:
        # Two processes starting on a new data dir would both migrate it, and
        # one reading while the other migrates can find the file locked: the
        # check and the upgrade happen under one lock, so the second waits
        # and then finds the schema current.
        with _migration_lock(settings.data_dir / "catalog.migrate.lock"):
            if _revision(engine, settings) != head_revision():
                logger.info("Upgrading the catalog at %s", settings.catalog_url_safe)
                upgrade(engine)
        return engine
    revision = _revision(engine, settings)
    if revision == head_revision():
        return engine
    raise CatalogError(
        f"the catalog at {settings.catalog_url_safe} is at revision "
        f"{revision or 'none'}, not {head_revision()}; run: semsearch db upgrade"
    )


def _revision(engine: Engine, settings: Settings) -> str | None:
    # A server that does not answer raised CatalogUnavailableError already;
    # what is left is a refusal (a wrong password) or a file SQLite cannot open.
    try:
        return current_revision(engine)
    except OperationalError as exc:
        raise CatalogError(
            f"cannot open the catalog, {catalog_address(engine.url)}: "
            f"{_first_line(exc)}"
        ) from exc


@contextmanager
def _migration_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc)) or type(exc).__name__
    return text.strip().splitlines()[0]
