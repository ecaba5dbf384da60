"""search.retry: the backoff schedule, what is retried, and the servers' errors."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from typing import Any
from unittest import mock

import httpx
import numpy as np
import pytest
from conftest import postgres_database
from qdrant_client import QdrantClient
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from search.catalog.engine import catalog_address, create_catalog_engine, open_catalog
from search.errors import CatalogError, InvalidInputError, StoreUnavailableError
from search.retry import (
    Backoff,
    CatalogUnavailableError,
    StoreRefusedError,
    is_transient,
    with_retries,
)
from search.settings import Settings
from search.stores import CollectionSpec, Point, ServerStore


def closed_port() -> int:
    """A local port nothing listens on: a server that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Waits(list[float]):
    """A sleep that only records how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Flaky:
    """A call that fails with ``error`` its first ``failures`` times."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "done"


DOWN = StoreUnavailableError("Qdrant is unavailable: cannot reach http://q:6333")


def test_waits_double_from_the_first_up_to_the_cap() -> None:
    backoff = Backoff(attempts=8, first_s=0.5, cap_s=10)
    assert [backoff.wait_s(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert backoff.wait_s(10_000) == 10  # no overflow far out


def test_the_settings_give_the_schedule() -> None:
    settings = Settings(retry_attempts=3, retry_backoff_s=0.25)
    backoff = Backoff.from_settings(settings)
    assert (backoff.attempts, backoff.first_s) == (3, 0.25)


def test_a_transient_error_is_retried_with_the_schedule() -> None:
    waits = Waits()
    call = Flaky(3, DOWN)
    assert with_retries(call, Backoff(attempts=5, first_s=1, sleep=waits)) == "done"
    assert call.calls == 4
    assert waits == [1, 2, 4]


def test_the_last_error_is_raised_once_the_attempts_are_used() -> None:
    waits = Waits()
    call = Flaky(10, DOWN)
    with pytest.raises(StoreUnavailableError):
        with_retries(call, Backoff(attempts=3, first_s=1, sleep=waits))
    assert call.calls == 3
    assert waits == [1, 2]


@pytest.mark.parametrize(
    "error",
    [
        InvalidInputError("bad filter"),
        StoreRefusedError("Qdrant is unavailable: http://q refused the API key"),
        CatalogError("the catalog is at revision 0001; run: semsearch db upgrade"),
        RuntimeError("a bug"),
    ],
)
def test_other_errors_are_raised_at_once(error: Exception) -> None:
    waits = Waits()
    call = Flaky(1, error)
    assert not is_transient(error)
    with pytest.raises(type(error)):
        with_retries(call, Backoff(sleep=waits))
    assert call.calls == 1
    assert waits == []


def test_each_retry_is_logged_with_the_server(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="search.retry"):
        with_retries(Flaky(2, DOWN), Backoff(first_s=0, sleep=Waits()))
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "cannot reach http://q:6333" in messages[0]
    assert "retry 1 of 4" in messages[0]


# The store: a client that fails as an unreachable server does.


def unreachable() -> ResponseHandlingException:
    return ResponseHandlingException(httpx.ConnectError("Connection refused"))


def remote_client(**calls: Any) -> mock.MagicMock:
    client: mock.MagicMock = mock.create_autospec(QdrantClient, instance=True)
    client.init_options = {
        "location": None,
        "url": "http://admin:hunter2@qdrant.example:6333",
        "api_key": "s3cret-key",
        "path": None,
    }
    for name, effect in calls.items():
        getattr(client, name).side_effect = effect
    return client


def test_a_store_request_is_retried_until_the_server_answers() -> None:
    client = remote_client(count=[unreachable(), unreachable(), mock.Mock(count=7)])
    waits = Waits()
    store = ServerStore(client, retry=Backoff(attempts=5, first_s=1, sleep=waits))
    assert store.count("docs") == 7
    assert client.count.call_count == 3
    assert waits == [1, 2]


def test_a_store_that_stays_down_names_the_server_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = remote_client(delete=unreachable())
    store = ServerStore(client, retry=Backoff(attempts=3, first_s=0, sleep=Waits()))
    with pytest.raises(StoreUnavailableError) as caught:
        store.delete("docs", [str(uuid.UUID(int=1))])
    assert client.delete.call_count == 3
    shown = str(caught.value) + caplog.text
    assert "http://qdrant.example:6333" in shown
    assert "hunter2" not in shown
    assert "s3cret" not in shown


def test_a_refused_api_key_is_not_retried() -> None:
    refusal = UnexpectedResponse(401, "Unauthorized", b"", httpx.Headers())
    client = remote_client(count=refusal)
    store = ServerStore(client, retry=Backoff(sleep=Waits()))
    with pytest.raises(StoreRefusedError, match="refused the API key"):
        store.count("docs")
    assert client.count.call_count == 1


def test_an_upsert_retried_midway_writes_each_point_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from search.stores import server

    monkeypatch.setattr(server, "UPSERT_BATCH", 2)
    real = QdrantClient(":memory:")
    # Batch 1 fails, then goes; batch 2 fails: the whole upsert is sent again.
    failures = iter([True, False, True, False, False])

    def upsert(*args: Any, **kwargs: Any) -> Any:
        if next(failures):
            raise unreachable()
        return real.upsert(*args, **kwargs)

    client = mock.Mock(wraps=real)
    client.init_options = real.init_options
    client.upsert.side_effect = upsert
    store = ServerStore(client, retry=Backoff(first_s=0, sleep=Waits()))
    store.create_collection("docs", CollectionSpec(4))
    vectors = np.eye(4, dtype=np.float32)
    points = [Point(str(uuid.UUID(int=i)), vectors[i], {"i": i}) for i in range(4)]
    store.upsert("docs", points)
    assert client.upsert.call_count == 5
    assert store.count("docs") == 4
    store.close()


# The catalog: a server that is down, gone midway, or refusing us.


def test_the_catalog_address_has_no_credentials() -> None:
    url = "postgresql+psycopg://alice:hunter2@db.example:6543/semsearch"
    assert catalog_address(url) == "PostgreSQL at db.example:6543/semsearch"
    assert catalog_address("postgresql+psycopg://db/x") == "PostgreSQL at db:5432/x"
    assert catalog_address("sqlite:////data/c.sqlite3") == "SQLite at /data/c.sqlite3"


def test_a_catalog_server_that_is_down_is_a_transient_error() -> None:
    port = closed_port()
    url = f"postgresql+psycopg://alice:hunter2@127.0.0.1:{port}/semsearch"
    engine = create_catalog_engine(url)
    try:
        with pytest.raises(CatalogUnavailableError) as caught, engine.connect():
            pass
    finally:
        engine.dispose()
    message = str(caught.value)
    assert message.startswith(
        f"PostgreSQL at 127.0.0.1:{port}/semsearch is unreachable"
    )
    assert "hunter2" not in message
    assert "alice" not in message
    assert is_transient(caught.value)


def test_opening_a_catalog_that_is_down_names_it() -> None:
    port = closed_port()
    settings = Settings(database_url=f"postgresql://alice:hunter2@127.0.0.1:{port}/x")
    with pytest.raises(CatalogUnavailableError, match=f"127.0.0.1:{port}/x"):
        open_catalog(settings)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from postgres_database()


@pytest.mark.postgres
def test_a_connection_lost_midway_is_transient_and_the_next_one_works(
    postgres_url: str,
) -> None:
    engine = create_catalog_engine(postgres_url)
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(CatalogUnavailableError, match="is unreachable"):
                connection.execute(text("SELECT 1"))

        def ask() -> Any:
            with engine.connect() as connection:
                return connection.execute(text("SELECT 1")).scalar()

        assert with_retries(ask, Backoff(first_s=0, sleep=Waits())) == 1
    finally:
        admin.dispose()
        engine.dispose()


@pytest.mark.postgres
def test_a_catalog_that_refuses_us_is_not_transient(postgres_url: str) -> None:
    refused = postgres_url.replace("postgres@", "no_such_role_x@", 1)
    engine = create_catalog_engine(refused)
    try:
        with pytest.raises(OperationalError, match="no_such_role_x"), engine.connect():
            pass
    finally:
        engine.dispose()
