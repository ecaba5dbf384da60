"""The UI signs people in and shows each only what their groups may read."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from ingest.pipeline import IngestOptions, Ingestor
from search.app import App
from search.settings import load_settings
from webui.apptest import APP, texts

SECRET_TITLE = "Salary bands"


@pytest.fixture
def restricted_corpus(
    tmp_path: Path, ui_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """One public note, one document of the hr group (from its front matter)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "public.md").write_text(
        "---\ntitle: Holiday calendar\n---\nThe office closes for the holidays "
        "in December; salary is paid before.\n",
        encoding="utf-8",
    )
    (folder / "salaries.md").write_text(
        f"---\ntitle: {SECRET_TITLE}\ngroups: [hr]\ntags: [pay]\n---\n"
        "Salary bands for every grade, and the yearly salary review.\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SEMSEARCH_ADMIN_GROUPS", "admins")
    app = App(load_settings())
    try:
        Ingestor(app).run([folder], IngestOptions())
    finally:
        app.close()
    return folder


def _search(at: AppTest, query: str) -> list[str]:
    at.text_input(key="q").input(query).run()
    assert not at.exception
    return [t for t in texts(at.markdown) if t.startswith("**")]


def _app(
    monkeypatch: pytest.MonkeyPatch, headers: Mapping[str, str] | None = None
) -> AppTest:
    if headers is not None:
        monkeypatch.setattr("ui.identity.request_headers", lambda: dict(headers))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    return at


def test_the_local_user_sees_the_groups_of_the_settings(
    restricted_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _app(monkeypatch)
    titles = _search(at, "salary")
    assert not any(SECRET_TITLE in t for t in titles)
    assert any("Holiday calendar" in t for t in titles)
    # The tag of the hidden document is not offered (nor counted) either.
    assert "pay" not in at.multiselect(key="f_tags").options

    # Settings are read when the server process opens its runtime.
    monkeypatch.setenv("SEMSEARCH_LOCAL_GROUPS", "hr")
    st.cache_resource.clear()
    at = _app(monkeypatch)
    assert any(SECRET_TITLE in t for t in _search(at, "salary"))
    assert any("Signed in as" in t and "hr" in t for t in texts(at.sidebar.caption))


def test_proxy_mode_without_the_header_shows_nothing(
    restricted_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_AUTH", "proxy")
    at = _app(monkeypatch, headers={})
    assert not at.exception
    assert any("Not signed in" in t for t in texts(at.error))
    assert not at.text_input  # no search box, no page at all


def test_proxy_headers_name_the_user_and_groups(
    restricted_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_AUTH", "proxy")
    outsider = _app(monkeypatch, {"X-Forwarded-User": "bob"})
    assert not any(SECRET_TITLE in t for t in _search(outsider, "salary"))

    member = _app(
        monkeypatch, {"x-forwarded-user": "ann", "X-Forwarded-Groups": "staff, hr"}
    )
    assert any(SECRET_TITLE in t for t in _search(member, "salary"))


def test_library_and_status_count_only_what_the_user_may_read(
    restricted_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_AUTH", "proxy")
    at = _app(monkeypatch, {"X-Forwarded-User": "bob"})
    at.switch_page("views/library.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["title"]) == ["Holiday calendar"]
    # Managing the library is for admins: no ingest form, no removal.
    assert not at.button
    assert not any("Add documents" in t for t in texts(at.subheader))

    at.switch_page("views/status.py").run()
    assert not at.exception
    assert at.metric[0].value == "1"
    assert not any("Last ingest" in t for t in texts(at.subheader))

    admin = _app(
        monkeypatch, {"X-Forwarded-User": "root", "X-Forwarded-Groups": "admins"}
    )
    admin.switch_page("views/library.py").run()
    assert sorted(admin.dataframe[0].value["title"]) == [
        "Holiday calendar",
        SECRET_TITLE,
    ]
    assert any("Add documents" in t for t in texts(admin.subheader))


def test_oidc_asks_to_sign_in_and_reads_the_groups_claim(
    restricted_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMSEARCH_AUTH", "oidc")
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert not at.text_input

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.user = {"is_logged_in": True, "email": "ann@example.com", "groups": ["hr"]}
    at.run()
    assert any(SECRET_TITLE in t for t in _search(at, "salary"))
    assert any("ann@example.com" in t for t in texts(at.sidebar.caption))


def test_a_link_to_a_hidden_passage_reveals_nothing(
    restricted_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.orm import Session

    from search.access import Access
    from search.catalog import repository as repo

    app = App(load_settings())
    try:
        with Session(app.engine) as session:
            hidden = next(
                d.id
                for d in repo.list_documents(session, Access.unrestricted())
                if d.access_groups == ["hr"]
            )
    finally:
        app.close()
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["like"] = f"{hidden}:0"
    at.run()
    assert not at.exception
    assert not any(SECRET_TITLE in t for t in texts(at.markdown))
    assert any("no longer in the index" in t for t in texts(at.error))
