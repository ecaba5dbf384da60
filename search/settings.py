"""One validated settings object, read from the environment.

| variable | default | what |
|---|---|---|
| SEMSEARCH_DATA_DIR | ./.semsearch | catalog (SQLite), embedded vector store, locks |
| SEMSEARCH_MODEL | all-MiniLM-L6-v2 | the encoder's model (name, folder or hub id) |
| SEMSEARCH_DEVICE / SEMSEARCH_PRECISION | auto / auto | see :class:`search.Encoder` |
| DATABASE_URL | SQLite in the data dir | a PostgreSQL URL selects the server catalog |
| QDRANT_URL, QDRANT_API_KEY | embedded store | a URL selects a Qdrant server |
| QDRANT_PREFER_GRPC | false | talk gRPC to the server |
| SEMSEARCH_QDRANT_SHARDS / _REPLICAS / _ON_DISK | server defaults | new collections |
| SEMSEARCH_CHUNK_TOKENS / _CHUNK_OVERLAP | 200 / 32 | chunk size, overlap (tokens) |
| SEMSEARCH_HNSW_THRESHOLD | 20000 | points before the embedded store builds HNSW |
| SEMSEARCH_UNGROUPED | public | documents without groups: public or private |
| SEMSEARCH_ADMIN_GROUPS | (none) | comma-separated groups that see everything |
| SEMSEARCH_ACCESS_RULES | (none) | TOML rules: path patterns to groups |
| SEMSEARCH_AUTH | local | the UI's sign-in: local, proxy (headers), oidc |
| SEMSEARCH_LOCAL_USER, _LOCAL_GROUPS | OS user, none | auth=local, the CLI |
| SEMSEARCH_AUTH_USER_HEADER | X-Forwarded-User | auth=proxy: user name |
| SEMSEARCH_AUTH_GROUPS_HEADER | X-Forwarded-Groups | auth=proxy: groups |
| SEMSEARCH_OIDC_GROUPS_CLAIM | groups | auth=oidc: the claim listing groups |
| SEMSEARCH_MAX_QUERY_CHARS | 1000 | longer queries are cut, with a notice |
| SEMSEARCH_MAX_FILE_MB, _MAX_PAGES | 200, 5000 | larger files are refused |
| SEMSEARCH_RETRY_ATTEMPTS | 5 | tries at a server that is down |
| SEMSEARCH_RETRY_BACKOFF_S | 1.0 | first wait between tries (doubling) |
| SEMSEARCH_JOB_LEASE_S | 60 | a running job's lease; heartbeats renew it |

Secrets (the API key, the database password) are ``SecretStr`` and shown
masked wherever settings are printed or logged; a user or password written
into QDRANT_URL is left out of the settings' repr, str and JSON too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from search.models import DEFAULT_MODEL


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    data_dir: Path = Field(
        Path(".semsearch"), validation_alias=_env("SEMSEARCH_DATA_DIR", "data_dir")
    )
    model: str = Field(DEFAULT_MODEL, validation_alias=_env("SEMSEARCH_MODEL", "model"))
    device: str | None = Field(
        None, validation_alias=_env("SEMSEARCH_DEVICE", "device")
    )
    precision: str = Field(
        "auto", validation_alias=_env("SEMSEARCH_PRECISION", "precision")
    )
    database_url: SecretStr | None = Field(
        None, validation_alias=_env("DATABASE_URL", "database_url")
    )
    qdrant_url: str | None = Field(
        None, validation_alias=_env("QDRANT_URL", "qdrant_url")
    )
    qdrant_api_key: SecretStr | None = Field(
        None, validation_alias=_env("QDRANT_API_KEY", "qdrant_api_key")
    )
    qdrant_prefer_grpc: bool = Field(
        False, validation_alias=_env("QDRANT_PREFER_GRPC", "qdrant_prefer_grpc")
    )
    qdrant_shard_number: int | None = Field(
        None,
        ge=1,
        validation_alias=_env("SEMSEARCH_QDRANT_SHARDS", "qdrant_shard_number"),
    )
    qdrant_replication_factor: int | None = Field(
        None,
        ge=1,
        validation_alias=_env("SEMSEARCH_QDRANT_REPLICAS", "qdrant_replication_factor"),
    )
    qdrant_on_disk: bool = Field(
        False, validation_alias=_env("SEMSEARCH_QDRANT_ON_DISK", "qdrant_on_disk")
    )
    chunk_tokens: int = Field(
        200,
        ge=16,
        le=8192,
        validation_alias=_env("SEMSEARCH_CHUNK_TOKENS", "chunk_tokens"),
    )
    chunk_overlap: int = Field(
        32, ge=0, validation_alias=_env("SEMSEARCH_CHUNK_OVERLAP", "chunk_overlap")
    )
    language: str = Field(
        "english",
        validation_alias=_env("SEMSEARCH_LANGUAGE", "language"),
        description="stemmer and stop words of keyword search (Snowball names)",
    )
    hnsw_threshold: int = Field(
        20_000,
        ge=1,
        validation_alias=_env("SEMSEARCH_HNSW_THRESHOLD", "hnsw_threshold"),
    )

    ungrouped: Literal["public", "private"] = Field(
        "public", validation_alias=_env("SEMSEARCH_UNGROUPED", "ungrouped")
    )
    admin_groups_value: str = Field(
        "", validation_alias=_env("SEMSEARCH_ADMIN_GROUPS", "admin_groups")
    )
    access_rules: Path | None = Field(
        None, validation_alias=_env("SEMSEARCH_ACCESS_RULES", "access_rules")
    )
    auth: Literal["local", "proxy", "oidc"] = Field(
        "local", validation_alias=_env("SEMSEARCH_AUTH", "auth")
    )
    local_user: str = Field(
        default_factory=lambda: _os_user(),
        validation_alias=_env("SEMSEARCH_LOCAL_USER", "local_user"),
    )
    local_groups_value: str = Field(
        "", validation_alias=_env("SEMSEARCH_LOCAL_GROUPS", "local_groups")
    )
    auth_user_header: str = Field(
        "X-Forwarded-User",
        validation_alias=_env("SEMSEARCH_AUTH_USER_HEADER", "auth_user_header"),
    )
    auth_groups_header: str = Field(
        "X-Forwarded-Groups",
        validation_alias=_env("SEMSEARCH_AUTH_GROUPS_HEADER", "auth_groups_header"),
    )
    oidc_groups_claim: str = Field(
        "groups",
        validation_alias=_env("SEMSEARCH_OIDC_GROUPS_CLAIM", "oidc_groups_claim"),
    )
    max_query_chars: int = Field(
        1000,
        ge=16,
        le=100_000,
        validation_alias=_env("SEMSEARCH_MAX_QUERY_CHARS", "max_query_chars"),
    )
    max_file_mb: float = Field(
        200, gt=0, validation_alias=_env("SEMSEARCH_MAX_FILE_MB", "max_file_mb")
    )
    max_pages: int = Field(
        5000, ge=1, validation_alias=_env("SEMSEARCH_MAX_PAGES", "max_pages")
    )
    retry_attempts: int = Field(
        5,
        ge=1,
        le=100,
        validation_alias=_env("SEMSEARCH_RETRY_ATTEMPTS", "retry_attempts"),
    )
    job_lease_s: float = Field(
        60.0,
        ge=1,
        le=3600,
        validation_alias=_env("SEMSEARCH_JOB_LEASE_S", "job_lease_s"),
    )
    ingest_overlap: Literal["auto", "all", "write", "none"] = Field(
        "auto",
        validation_alias=_env("SEMSEARCH_INGEST_OVERLAP", "ingest_overlap"),
    )
    retry_backoff_s: float = Field(
        1.0,
        ge=0,
        le=600,
        validation_alias=_env("SEMSEARCH_RETRY_BACKOFF_S", "retry_backoff_s"),
    )

    @field_validator("admin_groups_value", "local_groups_value")
    @classmethod
    def _group_list(cls, value: str) -> str:
        from search.access import parse_groups

        return ",".join(parse_groups(value))

    @field_validator("qdrant_url")
    @classmethod
    def _url_has_scheme(cls, value: str | None) -> str | None:
        if value and not re.match(r"^https?://", value):
            raise ValueError("QDRANT_URL must start with http:// or https://")
        return value or None

    @field_validator("database_url")
    @classmethod
    def _usable_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        """A URL SQLAlchemy can parse, told without echoing it (it holds secrets)."""
        if value is None or not value.get_secret_value():
            return None
        from sqlalchemy.exc import ArgumentError

        url = value.get_secret_value()
        if url.startswith(("postgres://", "postgresql://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        try:
            parsed = make_url(url)
            _ = parsed.port  # a port that is not a number fails here
        except (ArgumentError, ValueError):
            raise ValueError(
                "DATABASE_URL is not a database URL "
                "(postgresql://user:password@host:5432/database)"
            ) from None
        return value

    @field_validator("language")
    @classmethod
    def _known_language(cls, value: str) -> str:
        import snowballstemmer

        language = value.strip().lower()
        if language not in snowballstemmer.algorithms():
            known = ", ".join(sorted(snowballstemmer.algorithms()))
            raise ValueError(f"not a Snowball language; use one of: {known}")
        return language

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """What repr and str show: settings get printed and logged, so a
        password in QDRANT_URL is left out, as SecretStr masks the others."""
        for name, value in super().__repr_args__():
            if name == "qdrant_url" and isinstance(value, str):
                value = address_without_credentials(value)
            yield name, value

    @field_serializer("qdrant_url", when_used="json")
    def _qdrant_url_json(self, value: str | None) -> str | None:
        """The JSON form leaves credentials out as repr does (SecretStr too)."""
        return address_without_credentials(value) if value else value

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens // 2:
            raise ValueError(
                "SEMSEARCH_CHUNK_OVERLAP must be under half of the chunk size"
            )
        return self

    @property
    def admin_groups(self) -> tuple[str, ...]:
        return tuple(g for g in self.admin_groups_value.split(",") if g)

    @property
    def local_groups(self) -> tuple[str, ...]:
        return tuple(g for g in self.local_groups_value.split(",") if g)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def catalog_url(self) -> str:
        """The SQLAlchemy URL of the catalog, with its driver made explicit."""
        if self.database_url is None:
            return f"sqlite:///{(self.data_dir / 'catalog.sqlite3').resolve()}"
        url = self.database_url.get_secret_value()
        if url.startswith(("postgres://", "postgresql://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @property
    def catalog_url_safe(self) -> str:
        """The catalog URL with its password masked, for messages and logs."""
        return make_url(self.catalog_url).render_as_string(hide_password=True)

    @property
    def qdrant_url_safe(self) -> str | None:
        """The Qdrant server's address without credentials, if one is set."""
        return address_without_credentials(self.qdrant_url) if self.qdrant_url else None

    @property
    def embedded_catalog(self) -> bool:
        return self.database_url is None

    @property
    def embedded_store(self) -> bool:
        return self.qdrant_url is None

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "qdrant"


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


def address_without_credentials(url: str) -> str:
    """``scheme://host:port/path`` of ``url``: no user, password, query or fragment."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and ``overrides``, or one clear error.

    The message names the variables that are wrong and why, never their
    values, which may be secrets.
    """
    from pydantic import ValidationError

    from search.errors import InvalidInputError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}"
            for e in exc.errors()
        )
        raise InvalidInputError(f"invalid settings: {problems}") from None
