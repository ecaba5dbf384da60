"""Access groups: the rule, identities, the rules file, front matter, the CLI,
groups changing on re-ingest, and downloads that stay inside their folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import TinyModelFactory
from sqlalchemy.orm import Session

from ingest.access_rules import glob_pattern, load_rules
from ingest.loaders import load
from ingest.pipeline import IngestOptions, Ingestor
from search.access import Access, AccessPolicy, Principal, check_group_name
from search.app import App
from search.catalog import repository as repo
from search.cli.main import main
from search.download import find_document_file, read_document_file
from search.errors import InvalidInputError
from search.identity import cli_principal, oidc_principal, proxy_principal
from search.retrieval import Searcher
from search.settings import Settings, load_settings

EVERYTHING = Access.unrestricted()


def test_the_rule_fails_closed() -> None:
    policy = AccessPolicy(ungrouped_public=True, admin_groups=frozenset({"admins"}))
    anonymous = policy.access(None)
    assert anonymous.allows([])
    assert not anonymous.allows(["hr"])
    hr = policy.access(Principal("ann", ("hr",)))
    assert hr.allows(["hr", "legal"])
    assert not hr.allows(["legal"])
    assert policy.access(Principal("root", ("admins",))).allows(["anything"])
    private = AccessPolicy(ungrouped_public=False)
    assert not private.access(Principal("ann", ("hr",))).allows([])
    assert private.access(None).store_markers() == ()


@pytest.mark.parametrize("name", ["", "  ", "*", "a,b", "tab\there", "x" * 201])
def test_bad_group_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInputError):
        check_group_name(name)


def test_a_principal_cannot_claim_the_ungrouped_marker() -> None:
    with pytest.raises(InvalidInputError, match="reserved"):
        Principal("eve", ("*",))


def test_identities_from_settings_headers_and_claims() -> None:
    settings = Settings(local_user="me", local_groups="ops, eng")
    assert cli_principal(settings, None, None) == Principal("me", ("eng", "ops"))
    assert cli_principal(settings, "ann", ["hr"]) == Principal("ann", ("hr",))
    headers = {"x-forwarded-user": "bob", "X-FORWARDED-GROUPS": "hr,legal"}
    assert proxy_principal(settings, headers) == Principal("bob", ("hr", "legal"))
    assert proxy_principal(settings, {"X-Forwarded-Groups": "hr"}) is None
    custom = Settings(
        auth_user_header="Remote-User", auth_groups_header="Remote-Groups"
    )
    assert proxy_principal(custom, {"Remote-User": "c", "Remote-Groups": "x"}) == (
        Principal("c", ("x",))
    )
    claims = {"is_logged_in": True, "email": "d@example.com", "groups": ["hr"]}
    assert oidc_principal(settings, claims) == Principal("d@example.com", ("hr",))
    assert oidc_principal(settings, {"is_logged_in": False}) is None
    with pytest.raises(InvalidInputError, match="claim"):
        oidc_principal(settings, {"email": "e@x", "groups": {"hr": 1}})


def test_group_settings_are_validated() -> None:
    assert load_settings(admin_groups="admins, sec").admin_groups == ("admins", "sec")
    with pytest.raises(InvalidInputError, match="admin"):
        load_settings(admin_groups="ok,*")
    with pytest.raises(InvalidInputError, match="ungrouped"):
        load_settings(ungrouped="maybe")


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("hr/**", "hr/a.txt", True),
        ("hr/**", "hr/deep/er/a.txt", True),
        ("hr/**", "hrx/a.txt", False),
        ("**/salaries/*.pdf", "x/y/salaries/2024.pdf", True),
        ("**/salaries/*.pdf", "salaries/2024.pdf", True),
        ("**/salaries/*.pdf", "salaries/old/2024.pdf", False),
        ("*.md", "a.md", True),
        ("*.md", "sub/a.md", False),
        ("report?.txt", "report1.txt", True),
    ],
)
def test_rule_patterns(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_pattern(pattern).fullmatch(path)) is matches


def test_a_rules_file_gives_groups_by_path(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.toml"
    rules_file.write_text(
        '[[rule]]\nmatch = ["hr/**"]\ngroups = ["hr"]\n\n'
        f'[[rule]]\nmatch = ["{tmp_path}/docs/hr/pay/*"]\ngroups = ["board", "hr"]\n',
        encoding="utf-8",
    )
    rules = load_rules(rules_file)
    root = tmp_path / "docs"
    assert rules.groups_for(root / "hr" / "a.txt", root) == ("hr",)
    assert rules.groups_for(root / "hr" / "pay" / "b.txt", root) == ("board", "hr")
    assert rules.groups_for(root / "open.txt", root) == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[rule]]\nmatch = ['a/**']\n", "groups"),
        ("[[rule]]\ngroups = ['hr']\n", "match"),
        ("[[rule]]\nmatch = ['a']\ngroups = ['*']\n", "reserved"),
        ("[[rule]]\nmatch = ['a']\ngroups = ['hr']\ngroup = 'x'\n", "unknown key"),
        ("[rules]\n", "unknown key"),
        ("[[rule]\n", "not valid TOML"),
    ],
)
def test_a_bad_rules_file_stops_with_where(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError, match=problem):
        load_rules(path)
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_rules(tmp_path / "missing.toml")


def test_front_matter_groups_and_broken_front_matter(tmp_path: Path) -> None:
    good = tmp_path / "good.md"
    good.write_text("---\ngroups: [hr, legal]\n---\nText.\n", encoding="utf-8")
    assert load(good).groups == ["hr", "legal"]
    broken = tmp_path / "broken.md"
    broken.write_text("---\ngroups: [hr\n---\nText.\n", encoding="utf-8")
    # Refused rather than indexed as public.
    from ingest.documents import LoadError

    with pytest.raises(LoadError, match="names groups"):
        load(broken)


@pytest.fixture
def embedded_app(tmp_path: Path, tiny_model: TinyModelFactory) -> App:
    return App(Settings(data_dir=tmp_path / "data", model=str(tiny_model())))


def _groups(app: App) -> dict[str, list[str]]:
    with Session(app.engine) as session:
        return {
            Path(d.source_path).name: d.access_groups
            for d in repo.list_documents(session, EVERYTHING)
        }


def test_groups_of_all_three_sources_and_a_change_on_reingest(
    embedded_app: App, tmp_path: Path
) -> None:
    app = embedded_app
    docs = tmp_path / "docs"
    (docs / "hr").mkdir(parents=True)
    (docs / "hr" / "pay.md").write_text(
        "---\ngroups: [board]\n---\nPay bands.\n", encoding="utf-8"
    )
    (docs / "open.txt").write_text("Opening hours.", encoding="utf-8")
    (docs / "bad.md").write_text("---\ngroups: ['*']\n---\nX.\n", encoding="utf-8")
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nmatch = ["hr/**"]\ngroups = ["hr"]\n', "utf-8")
    try:
        summary = Ingestor(app).run(
            [docs], IngestOptions(groups=["staff"], rules=str(rules))
        )
        assert [Path(f["path"]).name for f in summary.failures] == ["bad.md"]
        assert "reserved" in summary.failures[0]["error"]
        assert _groups(app) == {
            "bad.md": [],
            "pay.md": ["board", "hr", "staff"],
            "open.txt": ["staff"],
        }
        # Dropping --group re-versions the files: points follow the catalog.
        Ingestor(app).run([docs], IngestOptions(rules=str(rules)))
        assert _groups(app)["open.txt"] == []
        searcher = Searcher.for_app(app)
        hits = searcher.search("opening hours", 5, mode="keyword")
        assert [Path(h.path).name for h in hits] == ["open.txt"]
        payload_groups = {
            tuple(p.payload["groups"])
            for p in app.store.scroll(app.collection, None, limit=100)[0]
            if p.payload["path"].endswith("open.txt")
        }
        assert payload_groups == {("*",)}
    finally:
        app.close()


def test_downloads_only_inside_the_root_and_unchanged(
    embedded_app: App, tmp_path: Path
) -> None:
    app = embedded_app
    docs = tmp_path / "docs"
    docs.mkdir()
    note = docs / "note.txt"
    note.write_text("A note to download.", encoding="utf-8")
    secret = tmp_path / "secret.txt"
    secret.write_text("Not to be served.", encoding="utf-8")
    try:
        Ingestor(app).run([docs])
        with Session(app.engine) as session:
            [row] = repo.list_documents(session, EVERYTHING)
        limit = app.settings.max_file_bytes
        public = AccessPolicy().access(None)
        assert read_document_file(app.engine, row.id, public, limit) == (
            b"A note to download."
        )
        assert find_document_file(app.engine, row.id, public).name == "note.txt"

        note.write_text("Replaced after indexing.", encoding="utf-8")
        with pytest.raises(InvalidInputError, match="changed since it was indexed"):
            read_document_file(app.engine, row.id, public, limit)

        note.unlink()
        note.symlink_to(secret)
        with pytest.raises(InvalidInputError, match="outside the folder"):
            find_document_file(app.engine, row.id, public)

        with pytest.raises(InvalidInputError, match="not in the index"):
            find_document_file(app.engine, "../../etc/passwd", public)
    finally:
        app.close()


def test_cli_search_and_status_act_as_the_user(
    tmp_path: Path,
    tiny_model: TinyModelFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SEMSEARCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SEMSEARCH_MODEL", str(tiny_model()))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pay.md").write_text(
        "---\ngroups: [hr]\n---\nSalary bands.\n", encoding="utf-8"
    )
    (docs / "open.md").write_text("Salary day is the 25th.\n", encoding="utf-8")
    assert main(["ingest", str(docs)]) == 0
    capsys.readouterr()

    def names(*extra: str) -> list[str]:
        assert main(["search", "salary", "--mode", "keyword", "--json", *extra]) == 0
        return sorted(Path(h["path"]).name for h in json.loads(capsys.readouterr().out))

    assert names() == ["open.md"]
    assert names("--user", "ann", "--as-group", "hr") == ["open.md", "pay.md"]
    monkeypatch.setenv("SEMSEARCH_LOCAL_GROUPS", "hr")
    assert names() == ["open.md", "pay.md"]
    monkeypatch.delenv("SEMSEARCH_LOCAL_GROUPS")

    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["documents"] == {"indexed": 1}
    assert status["user"] == os.environ.get("SEMSEARCH_LOCAL_USER", status["user"])

    assert main(["ingest", str(docs), "--group", "bad,name"]) == 1
    assert "comma" in capsys.readouterr().err
    assert main(["search", "salary", "--as-group", "*"]) == 1
    assert "reserved" in capsys.readouterr().err
