"""The UI under streamlit.testing: a data dir with a small corpus, per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from conftest import TinyModelFactory

from ingest.pipeline import IngestOptions, Ingestor
from search.app import App
from search.settings import load_settings

DOCUMENTS = {
    "it/backup.md": (
        "---\ntitle: Backup policy\ntags: [it, policy]\ndate: 2024-03-01\n---\n"
        "Back up the team share every night and keep a copy on a second site.\n\n"
        "A mirror of two disks survives one failed disk but is not a backup."
    ),
    "it/passwords.md": (
        "---\ntitle: Passwords\ntags: [it]\ndate: 2025-01-10\n---\n"
        "Reset a forgotten password from the account page with the emailed link."
    ),
    "kitchen/bread.txt": "Bread rises because yeast turns sugar into carbon dioxide.",
    "kitchen/coffee.html": (
        "<html><head><title>Coffee machine</title></head><body><main>"
        "<p>Descale the coffee machine every month with the citric acid tablets.</p>"
        "</main></body></html>"
    ),
    "broken.pdf": "%PDF-1.4 this is not really a pdf",
}


def write_corpus(folder: Path) -> Path:
    for name, text in DOCUMENTS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def ui_env(
    tmp_path: Path, tiny_model: TinyModelFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Settings for the UI process (a data dir, the tiny model); the data dir."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SEMSEARCH_MODEL", str(tiny_model()))
    yield data_dir
    # Releases the runtime: its job thread stops and the store lock is freed.
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def corpus(tmp_path: Path, ui_env: Path) -> Path:
    """The small corpus, ingested (and the ingesting App closed again)."""
    folder = write_corpus(tmp_path / "docs")
    app = App(load_settings())
    try:
        Ingestor(app).run([folder], IngestOptions())
    finally:
        app.close()
    return folder
