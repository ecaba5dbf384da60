"""Property: nothing of a document reaches a principal outside its groups.

Hypothesis draws a corpus whose documents get access groups from all three
sources (``--group`` at ingest, Markdown front matter, the rules file), a
policy (ungrouped documents public or private, an admin group), and then
principals, queries, filters and modes. Every path that returns or counts
something is asked: dense, keyword and hybrid hits, per-document results
and their snippets, more-like-this, catalog counts, facets, the library
list, store counts and downloads. Each restricted document carries a canary
word of its own; no answer to a principal who may not read it may hold it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from conftest import TinyModelFactory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from ingest.pipeline import IngestOptions, Ingestor
from search.access import Access, Principal
from search.app import App
from search.catalog import repository as repo
from search.download import find_document_file, read_document_file
from search.errors import InvalidInputError
from search.filters import SearchFilters, build_filter
from search.highlight import snippet
from search.retrieval import Searcher
from search.settings import Settings

GROUPS = ("hr", "legal", "eng", "board")
TAGS = ("alpha", "beta", "gamma")
WORDS = (
    "budget", "report", "review", "salary", "contract", "design", "server",
    "backup", "policy", "meeting", "plan", "risk", "audit", "release",
)  # fmt: skip
ADMIN = "admins"


@dataclass(frozen=True)
class Doc:
    name: str
    words: tuple[str, ...]
    tags: tuple[str, ...]
    front_groups: tuple[str, ...]
    in_restricted_folder: bool

    @property
    def canary(self) -> str:
        return f"canary{self.name}"


docs_strategy = st.lists(
    st.builds(
        Doc,
        name=st.just(""),
        words=st.lists(st.sampled_from(WORDS), min_size=3, max_size=12).map(tuple),
        tags=st.lists(st.sampled_from(TAGS), max_size=2, unique=True).map(tuple),
        front_groups=st.lists(st.sampled_from(GROUPS), max_size=2, unique=True).map(
            tuple
        ),
        in_restricted_folder=st.booleans(),
    ),
    min_size=2,
    max_size=8,
)
principal_strategy = st.one_of(
    st.none(),
    st.builds(
        Principal,
        user=st.sampled_from(["ann", "bob"]),
        groups=st.lists(
            st.sampled_from((*GROUPS, ADMIN, "nobody")), max_size=3, unique=True
        ).map(tuple),
    ),
)
filters_strategy = st.builds(
    SearchFilters,
    file_types=st.lists(st.sampled_from(["md", "txt"]), max_size=1).map(tuple),
    tags=st.lists(st.sampled_from(TAGS), max_size=2, unique=True).map(tuple),
    tags_mode=st.sampled_from(["any", "all"]),
    groups=st.lists(st.sampled_from(GROUPS), max_size=1).map(tuple),
)


@pytest.fixture(params=["embedded", "client"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _write(folder: Path, docs: list[Doc]) -> None:
    for doc in docs:
        sub = folder / ("restricted" if doc.in_restricted_folder else "open")
        sub.mkdir(parents=True, exist_ok=True)
        front = [f"title: Doc {doc.name}"]
        if doc.tags:
            front.append(f"tags: [{', '.join(doc.tags)}]")
        if doc.front_groups:
            front.append(f"groups: [{', '.join(doc.front_groups)}]")
        body = " ".join(doc.words) + f" {doc.canary}."
        text = "---\n" + "\n".join(front) + "\n---\n" + body + "\n"
        (sub / f"{doc.name}.md").write_text(text, encoding="utf-8")


def _groups_of(doc: Doc, run_groups: tuple[str, ...]) -> set[str]:
    groups = set(doc.front_groups) | set(run_groups)
    if doc.in_restricted_folder:
        groups.add("legal")  # the rules file below
    return groups


def _may_read(principal: Principal | None, groups: set[str], public: bool) -> bool:
    """The rule, written out again independently of search.access."""
    held = set(principal.groups) if principal is not None else set()
    if ADMIN in held:
        return True
    if not groups:
        return public
    return bool(held & groups)


@contextmanager
def _open(root: Path, model: Path, backend: str, ungrouped: str) -> Iterator[App]:
    settings = Settings(
        data_dir=root / "data",
        model=str(model),
        ungrouped=ungrouped,
        admin_groups=ADMIN,
    )
    if backend == "embedded":
        app = App(settings)
    else:
        from qdrant_client import QdrantClient

        from search.stores.server import ServerStore

        app = App(settings, store=ServerStore(QdrantClient(":memory:")))
    try:
        yield app
    finally:
        app.close()


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.data(),
    drawn=docs_strategy,
    run_groups=st.lists(st.sampled_from(GROUPS), max_size=1).map(tuple),
    ungrouped=st.sampled_from(["public", "private"]),
)
def test_nothing_reaches_a_principal_outside_the_groups(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_model: TinyModelFactory,
    backend: str,
    data: st.DataObject,
    drawn: list[Doc],
    run_groups: tuple[str, ...],
    ungrouped: str,
) -> None:
    root = tmp_path_factory.mktemp("leak")
    docs = [replace(d, name=f"d{i}") for i, d in enumerate(drawn)]
    folder = root / "docs"
    _write(folder, docs)
    rules = root / "rules.toml"
    rules.write_text(
        '[[rule]]\nmatch = ["restricted/**"]\ngroups = ["legal"]\n', encoding="utf-8"
    )
    public = ungrouped == "public"
    groups = {d.name: _groups_of(d, run_groups) for d in docs}

    with _open(root, tiny_model(), backend, ungrouped) as app:
        summary = Ingestor(app).run(
            [folder], IngestOptions(groups=run_groups, rules=str(rules))
        )
        assert summary.failed == 0
        searcher = Searcher.for_app(app)
        everything = Access.unrestricted()
        with Session(app.engine) as session:
            rows = repo.list_documents(session, everything)
            ids = {Path(r.source_path).stem: r.id for r in rows}
            chunks = {Path(r.source_path).stem: r.chunk_count for r in rows}
            # The catalog holds the groups the three sources give.
            assert {Path(r.source_path).stem: set(r.access_groups) for r in rows} == (
                groups
            )

        for _ in range(4):
            principal = data.draw(principal_strategy, label="principal")
            access = searcher.access(principal)
            readable = {n for n in groups if _may_read(principal, groups[n], public)}
            hidden = {d.canary for d in docs if d.name not in readable}
            _check_searches(searcher, data, docs, principal, readable, hidden)
            _check_more_like(searcher, data, ids, principal, readable, hidden)
            _check_counts(app, access, docs, readable, chunks)
            _check_downloads(app, access, ids, readable, hidden)


def _check_searches(
    searcher: Searcher,
    data: st.DataObject,
    docs: list[Doc],
    principal: Principal | None,
    readable: set[str],
    hidden: set[str],
) -> None:
    canaries = [d.canary for d in docs]
    for mode in ("dense", "keyword", "hybrid"):
        query = data.draw(
            st.one_of(st.sampled_from(canaries), st.sampled_from(WORDS)), label="q"
        )
        filters = data.draw(filters_strategy, label="filters")
        hits = searcher.search(query, 50, filters, principal=principal, mode=mode)
        assert {Path(h.path).stem for h in hits} <= readable
        assert not any(c in h.text for h in hits for c in hidden)
        results = searcher.search_documents(
            query, 20, filters, principal=principal, mode=mode
        )
        assert {Path(r.path).stem for r in results} <= readable
        for result in results:
            for passage in result.passages:
                cut = snippet(passage.text, query)
                assert not any(c in cut or c in result.title for c in hidden)
    # Not vacuous: a readable document's own canary finds it by keyword.
    if readable:
        name = data.draw(st.sampled_from(sorted(readable)), label="readable")
        hits = searcher.search(f"canary{name}", 5, principal=principal, mode="keyword")
        assert [Path(h.path).stem for h in hits][:1] == [name]


def _check_more_like(
    searcher: Searcher,
    data: st.DataObject,
    ids: dict[str, str],
    principal: Principal | None,
    readable: set[str],
    hidden: set[str],
) -> None:
    name = data.draw(st.sampled_from(sorted(ids)), label="like")
    if name not in readable:
        with pytest.raises(InvalidInputError, match="no longer in the index"):
            searcher.more_like(ids[name], 0, 10, principal=principal)
        return
    hits = searcher.more_like(ids[name], 0, 50, principal=principal)
    assert {Path(h.path).stem for h in hits} <= readable - {name}
    assert not any(c in h.text for h in hits for c in hidden)


def _check_counts(
    app: App,
    access: Access,
    docs: list[Doc],
    readable: set[str],
    chunks: dict[str, int],
) -> None:
    shown = [d for d in docs if d.name in readable]
    with Session(app.engine) as session:
        assert repo.count_documents(session, access).get("indexed", 0) == len(shown)
        assert repo.count_active_chunks(session, access) == sum(
            chunks[d.name] for d in shown
        )
        listed = repo.list_documents(session, access)
        assert {Path(d.source_path).stem for d in listed} == readable
        facets = repo.get_facets(session, access)
    assert facets.file_types == ({"md": len(shown)} if shown else {})
    assert facets.tags == dict(Counter(t for d in shown for t in d.tags))
    store_count = app.store.count(app.collection, build_filter(None, access))
    assert store_count == sum(chunks[d.name] for d in shown)


def _check_downloads(
    app: App,
    access: Access,
    ids: dict[str, str],
    readable: set[str],
    hidden: set[str],
) -> None:
    limit = app.settings.max_file_bytes
    with pytest.raises(InvalidInputError) as missing:
        find_document_file(app.engine, str(uuid.uuid4()), access)
    for name, document_id in ids.items():
        if name in readable:
            data = read_document_file(app.engine, document_id, access, limit)
            assert f"canary{name}".encode() in data
            continue
        with pytest.raises(InvalidInputError) as refused:
            read_document_file(app.engine, document_id, access, limit)
        # The same answer as for a document that does not exist.
        assert str(refused.value) == str(missing.value)
        assert not any(c in str(refused.value) for c in hidden)
