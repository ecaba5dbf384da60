"""The project's deployment files stay valid as they grow."""

from __future__ import annotations

import tomllib

import yaml
from conftest import REPO


def test_docker_compose_wires_the_backends() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"qdrant", "postgres", "semsearch"} <= set(services)
    app = services["semsearch"]
    assert app["environment"]["QDRANT_URL"] == "http://qdrant:6333"
    assert app["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    for volume in ("qdrant-data", "postgres-data", "semsearch-data"):
        assert volume in compose["volumes"]


def test_console_script_and_packages() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["semsearch"] == "search.cli.main:main"
    for package in ("search", "ingest", "ui"):
        assert (REPO / package / "__init__.py").is_file()
        assert (REPO / package / "py.typed").is_file()
