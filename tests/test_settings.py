"""Settings from the environment: defaults, validation, secrets kept out."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from search.errors import InvalidInputError
from search.settings import Settings, load_settings


def test_the_environment_sets_every_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SEMSEARCH_LANGUAGE", "German")
    monkeypatch.setenv("SEMSEARCH_CHUNK_TOKENS", "120")
    monkeypatch.setenv("QDRANT_URL", "https://qdrant.internal:6333")
    settings = load_settings()
    assert settings.data_dir == tmp_path
    assert settings.language == "german"
    assert settings.chunk_tokens == 120
    assert not settings.embedded_store


def test_an_unknown_language_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEMSEARCH_LANGUAGE", "klingon")
    with pytest.raises(InvalidInputError, match=r"SEMSEARCH_LANGUAGE.*english"):
        load_settings()


def test_bad_urls_and_sizes_are_refused() -> None:
    with pytest.raises(ValidationError, match="QDRANT_URL"):
        Settings(qdrant_url="qdrant:6333")
    with pytest.raises(ValidationError, match="under half"):
        Settings(chunk_tokens=100, chunk_overlap=60)


def test_the_catalog_address_is_shown_without_its_password() -> None:
    settings = Settings(database_url="postgresql://reader:hunter2@db:5432/catalog")
    assert "hunter2" not in settings.catalog_url_safe
    assert "db:5432" in settings.catalog_url_safe


def test_the_qdrant_address_is_shown_without_credentials() -> None:
    settings = Settings(qdrant_url="https://admin:s3cret@qdrant.internal:6333/?x=1")
    assert settings.qdrant_url_safe == "https://qdrant.internal:6333"
    assert Settings().qdrant_url_safe is None


@pytest.mark.parametrize(
    "url", ["postgresql//u:S3cret@h/db", "postgresql://u:S3cret@h:port/db"]
)
def test_a_malformed_database_url_is_named_without_its_secret(url: str) -> None:
    with pytest.raises(
        InvalidInputError, match="DATABASE_URL is not a database URL"
    ) as e:
        load_settings(database_url=url)
    assert "S3cret" not in str(e.value)
