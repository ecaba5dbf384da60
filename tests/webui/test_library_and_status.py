"""The library and status pages under streamlit.testing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from search.app import App
from search.catalog import repository as repo
from search.errors import InvalidInputError
from search.settings import load_settings
from search.stores.base import Filter, MatchAny
from ui.views.library import _safe_name
from webui.apptest import new_app, texts
from webui.conftest import write_corpus


def _table(at: object) -> list[dict[str, object]]:
    frame = at.dataframe[0].value  # type: ignore[attr-defined]
    return list(frame.to_dict("records"))


def test_an_empty_library_says_how_to_add_documents(ui_env: Path) -> None:
    at = new_app("views/library.py")
    assert not at.exception
    assert any("No documents yet" in t for t in texts(at.info))


def test_the_table_lists_indexed_and_failed_documents(corpus: Path) -> None:
    at = new_app("views/library.py")
    assert not at.exception
    rows = _table(at)
    assert len(rows) == 5
    by_status = {r["path"].rsplit("/", 1)[1]: r for r in rows}  # type: ignore[union-attr]
    assert by_status["broken.pdf"]["status"] == "failed"
    assert by_status["broken.pdf"]["error"]
    assert by_status["backup.md"]["status"] == "indexed"
    assert by_status["backup.md"]["title"] == "Backup policy"
    assert any("4 indexed" in t and "1 failed" in t for t in texts(at.caption))


def test_the_table_can_be_searched_and_filtered_by_status(corpus: Path) -> None:
    at = new_app("views/library.py")
    at.selectbox(key="lib-status").select("failed").run()
    assert [r["status"] for r in _table(at)] == ["failed"]

    at.selectbox(key="lib-status").select("all").run()
    at.text_input(key="lib-find").input("kitchen").run()
    assert {Path(str(r["path"])).name for r in _table(at)} == {
        "bread.txt",
        "coffee.html",
    }


def test_a_folder_is_ingested_with_a_summary(ui_env: Path, tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "docs")
    at = new_app("views/library.py")
    at.text_input(key="lib-path").input(str(folder))
    at.text_input(key="folder-tags").input("handbook, 2026")
    at.button[0].click().run()

    assert not at.exception
    assert any("4 new" in t and "1 failed" in t for t in texts(at.warning))
    assert any("broken.pdf" in t for t in texts(at.caption))
    rows = _table(at)
    assert len(rows) == 5
    indexed = [r for r in rows if r["status"] == "indexed"]
    assert all(r["tags"] and "handbook" in str(r["tags"]) for r in indexed)


def test_a_path_that_does_not_exist_is_a_message(ui_env: Path, tmp_path: Path) -> None:
    at = new_app("views/library.py")
    at.text_input(key="lib-path").input(str(tmp_path / "missing"))
    at.button[0].click().run()
    assert not at.exception
    assert any("does not exist" in t for t in texts(at.error))


def test_removing_a_document_takes_it_out_of_catalog_and_store(corpus: Path) -> None:
    at = new_app("views/library.py")
    target = str((corpus / "kitchen" / "bread.txt").resolve())
    document_id = repo.document_id_for(target)
    at.selectbox(key="lib-remove").select(document_id).run()
    remove = next(b for b in at.button if b.label == "Remove from the index")
    remove.click().run()

    assert not at.exception
    assert any("Removed" in t for t in texts(at.success))
    assert target not in [r["path"] for r in _table(at)]

    runtime_app = _ui_app()
    with Session(runtime_app.engine) as session:
        assert repo.get_document(session, document_id) is None
    points = runtime_app.store.count(
        runtime_app.collection, Filter(must=(MatchAny("doc_id", (document_id,)),))
    )
    assert points == 0


def _ui_app() -> App:
    from ui.resources import runtime

    return runtime().app


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("notes: draft?.md", "notes_ draft_.md"),
    ],
)
def test_uploaded_names_stay_inside_the_upload_folder(name: str, stored: str) -> None:
    assert _safe_name(name) == stored


def test_an_upload_name_with_nothing_left_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        _safe_name("...")


def test_status_shows_counts_model_backends_and_last_ingest(corpus: Path) -> None:
    at = new_app("views/status.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Documents indexed"] == "4"
    assert metrics["Failed"] == "1"
    assert int(metrics["Chunks"]) == int(metrics["Points in the store"]) > 0
    page = " ".join(texts(at.markdown))
    assert "device **cpu**" in page
    assert "embedded Qdrant" in page
    assert "SQLite" in page
    # The corpus fixture ingested without a job; the status says none ran.
    assert any("No ingest has run yet" in t for t in texts(at.caption))


def test_status_names_the_last_ingest(ui_env: Path, tmp_path: Path) -> None:
    folder = write_corpus(tmp_path / "docs")
    at = new_app("views/library.py")
    at.text_input(key="lib-path").input(str(folder))
    at.button[0].click().run()
    at.switch_page("views/status.py").run()
    assert any(str(folder) in t and "4 new" in t for t in texts(at.markdown))


def test_settings_reach_the_ui_through_the_environment(ui_env: Path) -> None:
    new_app("views/status.py")
    assert _ui_app().settings.data_dir == load_settings().data_dir == ui_env
