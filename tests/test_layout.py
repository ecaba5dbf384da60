"""The project's packaging stays valid as it grows (compose: tests/test_compose.py)."""

from __future__ import annotations

import tomllib

from conftest import REPO


def test_console_script_and_packages() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["semsearch"] == "search.cli.main:main"
    for package in ("search", "ingest", "ui"):
        assert (REPO / package / "__init__.py").is_file()
        assert (REPO / package / "py.typed").is_file()
