"""The search page under streamlit.testing: results, filters, URL, states."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from ingest import jobs
from ingest.pipeline import IngestOptions
from search.access import Access
from search.app import App
from search.catalog import repository as repo
from search.catalog.models import Job, JobStatus
from search.settings import load_settings
from webui.apptest import new_app, texts

EVERYTHING = Access.unrestricted()


def _result_titles(at: object) -> list[str]:
    return [t for t in texts(at.markdown) if t.startswith("**")]  # type: ignore[attr-defined]


def _passages(at: object) -> list[str]:
    return [t for t in texts(at.markdown) if 'class="semsearch-passage"' in t]  # type: ignore[attr-defined]


def test_empty_index_says_how_to_add_documents(ui_env: Path) -> None:
    at = new_app()
    assert not at.exception
    assert any("index is empty" in t for t in texts(at.info))
    assert any("semsearch ingest" in t for t in texts(at.info))


def test_a_query_shows_documents_once_each_with_marked_terms(corpus: Path) -> None:
    at = new_app()
    at.text_input(key="q").input("backup copy second site").run()

    assert not at.exception
    assert not at.error
    titles = _result_titles(at)
    # Four documents were indexed (the broken pdf failed); each shows once.
    assert len(titles) == 4
    assert len(set(titles)) == 4
    assert any("Backup policy" in t for t in titles)
    assert any(t.startswith("4 documents in ") for t in texts(at.caption))
    marked = [p for p in _passages(at) if "<mark>" in p]
    assert any("<mark>second</mark>" in p and "<mark>site</mark>" in p for p in marked)
    assert at.query_params["q"] == "backup copy second site"


def test_the_url_fills_the_query_and_filters(corpus: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from webui.apptest import APP

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["q"] = "machine"
    at.query_params["type"] = ["html"]
    at.query_params["k"] = "5"
    at.run()

    assert not at.exception
    assert at.text_input(key="q").value == "machine"
    assert at.multiselect(key="f_types").value == ["html"]
    assert at.slider(key="f_k").value == 5
    titles = _result_titles(at)
    assert titles == ["**1. Coffee machine**"]


def test_bad_url_values_are_named_and_ignored(corpus: Path) -> None:
    from streamlit.testing.v1 import AppTest

    from webui.apptest import APP

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["q"] = "bread"
    at.query_params["since"] = "yesterday"
    at.query_params["k"] = "many"
    at.run()

    assert not at.exception
    warnings = " ".join(texts(at.warning))
    assert "yesterday" in warnings
    assert "many" in warnings
    assert _result_titles(at)


def test_filters_narrow_results_and_an_empty_page_suggests_dropping_them(
    corpus: Path,
) -> None:
    at = new_app()
    at.text_input(key="q").input("policy").run()
    at.multiselect(key="f_types").select("md").run()
    assert not at.exception
    md_only = _result_titles(at)
    assert md_only
    assert all("MD" in c for c in texts(at.caption) if "score" in c and "/" in c)

    at.multiselect(key="f_tags").select("policy").run()
    assert list(_result_titles(at)) == ["**1. Backup policy**"]

    at.text_input(key="f_path").input("/no/such/folder").run()
    assert not _result_titles(at)
    assert any("Try dropping some of them" in t for t in texts(at.info))

    at.button(key="clear-empty").click().run()
    assert len(_result_titles(at)) == 4


def test_tag_facets_show_counts(corpus: Path) -> None:
    at = new_app()
    tags = at.multiselect(key="f_tags")
    assert "it" in tags.options[0] or any(o.startswith("it (") for o in tags.options)
    assert "it (2)" in tags.options
    assert "policy (1)" in tags.options


def test_an_inverted_date_range_is_a_message_not_an_exception(corpus: Path) -> None:
    at = new_app()
    at.text_input(key="q").input("bread").run()
    at.date_input(key="f_since").set_value(date(2025, 1, 1)).run()
    at.date_input(key="f_until").set_value(date(2024, 1, 1)).run()

    assert not at.exception
    assert any("inverted" in t for t in texts(at.error))


def test_a_date_range_keeps_documents_of_those_dates(corpus: Path) -> None:
    at = new_app()
    at.text_input(key="q").input("policy password").run()
    at.date_input(key="f_since").set_value(date(2025, 1, 1)).run()
    at.date_input(key="f_until").set_value(date(2025, 1, 31)).run()

    assert not at.exception
    assert _result_titles(at) == ["**1. Passwords**"]
    assert at.query_params["since"] == "2025-01-01"


def test_more_like_this_shows_other_documents(corpus: Path) -> None:
    at = new_app()
    at.text_input(key="q").input("backup").run()
    first = _result_titles(at)[0]
    like_buttons = [b for b in at.button if str(b.key).startswith("like-")]
    document_id = str(like_buttons[0].key).split("-", 1)[1].rsplit("-", 1)[0]
    like_buttons[0].click().run()

    assert not at.exception
    titles = _result_titles(at)
    assert titles
    assert first.split(". ", 1)[1] not in [t.split(". ", 1)[1] for t in titles]
    assert at.query_params["like"].startswith(document_id)
    assert any("passages like" in t for t in texts(at.caption))

    at.button[0].click().run()  # back to the search
    assert _result_titles(at)[0] == first


def test_each_result_offers_the_file_for_download(corpus: Path) -> None:
    at = new_app()
    at.text_input(key="q").input("coffee").run()
    # streamlit.testing has no download element; the button is an UnknownElement
    # whose proto names the file.
    downloads = list(at.get("download_button"))
    assert len(downloads) == len(_result_titles(at))


def test_a_backend_that_is_down_is_named(
    ui_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QDRANT_URL", "https://127.0.0.1:9")
    monkeypatch.setenv("QDRANT_API_KEY", "very-secret-key")
    at = new_app()

    assert not at.exception
    message = " ".join(texts(at.error))
    assert "127.0.0.1:9" in message
    assert "Qdrant" in message
    assert "very-secret-key" not in message


def test_a_catalog_that_is_down_is_named_without_its_password(
    ui_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DATABASE_URL", "postgresql+psycopg://reader:hunter2@127.0.0.1:9/catalog"
    )
    at = new_app()

    assert not at.exception
    message = " ".join(texts(at.error))
    assert "127.0.0.1:9" in message
    assert "hunter2" not in message


def test_jobs_queued_by_the_cli_run_in_the_ui_process(
    corpus: Path, tmp_path: Path
) -> None:
    at = new_app()  # the UI takes the embedded store
    assert not at.exception
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "tea.txt").write_text("Green tea is steeped at eighty degrees.", "utf-8")

    cli = App(load_settings())  # like `semsearch ingest`: the catalog only
    try:
        job_id = jobs.enqueue(cli, jobs.ingest_params([extra], IngestOptions()))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Session(cli.engine) as session:
                job = session.get(Job, job_id)
                assert job is not None
                if job.status in (JobStatus.DONE, JobStatus.FAILED):
                    break
            time.sleep(0.2)
        assert job.status == JobStatus.DONE
        assert job.worker is not None
        with Session(cli.engine) as session:
            assert repo.count_documents(session, EVERYTHING)["indexed"] == 5
    finally:
        cli.close()

    at.text_input(key="q").input("tea").run()
    assert any("tea" in t for t in _result_titles(at))


def test_the_ranking_mode_is_chosen_on_the_page_and_kept_in_the_url(
    corpus: Path,
) -> None:
    at = new_app()
    at.text_input(key="q").input("descale coffee machine").run()
    hybrid = _result_titles(at)
    assert "mode" not in at.query_params  # the default stays out of links

    at.segmented_control(key="f_mode").set_value("keyword").run()
    assert not at.exception
    assert at.query_params["mode"] == "keyword"
    keyword = _result_titles(at)
    # Only documents holding one of the words match by keywords.
    assert keyword == ["**1. Coffee machine**"]
    assert len(hybrid) > len(keyword)


def test_an_index_of_an_older_format_asks_for_a_new_ingest(corpus: Path) -> None:
    app = App(load_settings())
    try:
        app.store.delete_collection(app.collection)  # as if made by format 1
    finally:
        app.close()
    at = new_app()
    at.text_input(key="q").input("backup").run()
    assert not at.exception
    assert any("older version" in t for t in texts(at.warning))
