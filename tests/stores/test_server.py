"""ServerStore on its own: what it asks of a server, and how it reports failures."""

from __future__ import annotations

from typing import Any
from unittest import mock

import httpx
import pytest
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from search.errors import InvalidInputError, StoreUnavailableError
from search.stores import CollectionSpec, FieldType, ServerStore

from .oracle import NAME

REMOTE = {
    "location": None,
    "url": "https://admin:hunter2@qdrant.example:6333",
    "port": 6333,
    "grpc_port": 6334,
    "prefer_grpc": False,
    "api_key": "s3cret-key",
    "path": None,
}


def fake_client(**options: Any) -> mock.MagicMock:
    client: mock.MagicMock = mock.create_autospec(QdrantClient, instance=True)
    client.init_options = {**REMOTE, **options}
    return client


@pytest.mark.parametrize(
    ("options", "where"),
    [
        (
            {"url": "https://127.0.0.1:1", "api_key": "s3cret-key"},
            "https://127.0.0.1:1",
        ),
        ({"url": "https://admin:hunter2@127.0.0.1:1"}, "https://127.0.0.1:1"),
        (
            {"url": "http://127.0.0.1:1", "prefer_grpc": True},
            "http://127.0.0.1:1 (gRPC port 6334)",
        ),
        ({"url": "http://qdrant.invalid:6333"}, "http://qdrant.invalid:6333"),
    ],
)
def test_connect_reports_an_unreachable_server_without_secrets(
    options: dict[str, Any], where: str
) -> None:
    with pytest.raises(StoreUnavailableError) as caught:
        ServerStore.connect(timeout_s=2, **options)
    message = str(caught.value)
    assert f"cannot reach {where}" in message
    assert "s3cret" not in message
    assert "hunter2" not in message


def test_create_collection_passes_the_options_through() -> None:
    client = fake_client()
    client.collection_exists.return_value = False
    store = ServerStore(client, shard_number=3, replication_factor=2, on_disk=True)
    spec = CollectionSpec(
        384, {"doc_id": FieldType.KEYWORD, "modified": FieldType.INTEGER}
    )
    store.create_collection(NAME, spec)

    kwargs = client.create_collection.call_args.kwargs
    assert kwargs["vectors_config"] == models.VectorParams(
        size=384, distance=models.Distance.COSINE, on_disk=True
    )
    assert kwargs["shard_number"] == 3
    assert kwargs["replication_factor"] == 2
    assert kwargs["on_disk_payload"] is True
    assert client.create_payload_index.call_args_list == [
        mock.call(
            NAME, "doc_id", field_schema=models.PayloadSchemaType.KEYWORD, wait=True
        ),
        mock.call(
            NAME, "modified", field_schema=models.PayloadSchemaType.INTEGER, wait=True
        ),
    ]


def test_create_collection_on_an_existing_one_adds_missing_indexes() -> None:
    client = fake_client()
    client.collection_exists.return_value = True
    client.get_collection.return_value = mock.Mock(
        config=mock.Mock(
            params=mock.Mock(vectors=models.VectorParams(size=8, distance="Cosine"))
        ),
        payload_schema={"doc_id": mock.Mock()},
    )
    store = ServerStore(client)
    store.create_collection(
        NAME,
        CollectionSpec(8, {"doc_id": FieldType.KEYWORD, "tags": FieldType.KEYWORD}),
    )
    client.create_collection.assert_not_called()
    assert client.create_payload_index.call_args_list == [
        mock.call(
            NAME, "tags", field_schema=models.PayloadSchemaType.KEYWORD, wait=True
        )
    ]
    with pytest.raises(InvalidInputError, match="dimension 8, not 16"):
        store.create_collection(NAME, CollectionSpec(16))


def refused(status: int) -> UnexpectedResponse:
    body = b'{"status": {"error": "Wrong input: bad things"}}'
    return UnexpectedResponse(status, "status", body, httpx.Headers())


def test_http_errors_become_semsearch_errors() -> None:
    client = fake_client()
    store = ServerStore(client)

    client.count.side_effect = refused(401)
    with pytest.raises(StoreUnavailableError, match="refused the API key") as caught:
        store.count(NAME)
    assert "s3cret" not in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "https://qdrant.example:6333" in str(caught.value)

    client.count.side_effect = refused(404)
    with pytest.raises(InvalidInputError, match="no collection named 'docs'"):
        store.count(NAME)
    client.count.side_effect = refused(400)
    with pytest.raises(InvalidInputError, match="Wrong input: bad things"):
        store.count(NAME)


def test_local_mode_reports_a_missing_collection() -> None:
    store = ServerStore(QdrantClient(":memory:"))
    with pytest.raises(InvalidInputError, match="no collection named 'docs'"):
        store.scroll(NAME)
    store.delete_collection(NAME)  # absent: nothing happens
    store.close()
