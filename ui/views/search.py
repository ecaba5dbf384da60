"""The search page: a query box, filters in the sidebar, results per document."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import streamlit as st
from sqlalchemy.orm import Session

from search.access import Access
from search.catalog import repository as repo
from search.download import DocumentFile, find_document_files, read_document_file
from search.grouping import DocumentResult, group_hits
from search.highlight import (
    best_sentences,
    highlight_html,
    query_terms,
    snippet,
    term_spans,
)
from search.retrieval import DEFAULT_MODE
from ui import params as url
from ui.identity import Viewer, current_viewer
from ui.resources import runtime, shown_errors

PASSAGES_PER_DOCUMENT = 3
FOCUSED_DOCUMENTS = 5
MODE_LABELS = {"hybrid": "Both", "dense": "Meaning", "keyword": "Words"}

PASSAGE_STYLE = """
<style>
.semsearch-passage {border-left: 3px solid #d0d7de; padding: 0.1rem 0 0.1rem 0.8rem;
  margin: 0.2rem 0 0.4rem 0;}
.semsearch-passage mark {background: #fff3a3; padding: 0 1px;}
</style>
"""


AccessKey = tuple[tuple[str, ...], bool, bool]


def _access(key: AccessKey) -> Access:
    groups, ungrouped, everything = key
    return Access(frozenset(groups), ungrouped, everything)


# Cached per access: one user's counts are never another's.
@st.cache_data(ttl=15, show_spinner=False)
def facets(access_key: AccessKey) -> repo.Facets:
    with Session(runtime().app.engine) as session:
        return repo.get_facets(session, _access(access_key))


@st.cache_data(ttl=15, show_spinner=False)
def indexed_documents(access_key: AccessKey) -> int:
    with Session(runtime().app.engine) as session:
        counts = repo.count_documents(session, _access(access_key))
        return counts.get("indexed", 0)


def _seed_from_url() -> None:
    """On a session's first run, the widgets start from the URL's parameters."""
    if "seeded" in st.session_state:
        return
    params = {key: st.query_params.get_all(key) for key in st.query_params}
    state = url.from_query_params(params)
    st.session_state.update(
        seeded=True,
        q=state.query,
        f_k=state.top_k,
        f_types=list(state.file_types),
        f_tags=list(state.tags),
        f_tags_mode=state.tags_mode,
        f_path=state.path_prefix,
        f_since=state.since,
        f_until=state.until,
        like=state.like,
        f_mode=state.mode,
        url_problems=state.problems,
    )


def _clear_filters() -> None:
    st.session_state.update(
        f_types=[], f_tags=[], f_tags_mode="any", f_path="", f_since=None, f_until=None
    )


def _more_like(document_id: str, ordinal: int) -> None:
    st.session_state.like = (document_id, ordinal)


def _back_to_search() -> None:
    st.session_state.like = None


def _sidebar(known: repo.Facets) -> None:
    with st.sidebar:
        st.segmented_control(
            "Ranking",
            list(MODE_LABELS),
            key="f_mode",
            format_func=MODE_LABELS.__getitem__,
            help="Meaning: the embedding model. Words: BM25 keywords. "
            "Both: the two lists' scores normalized and summed.",
        )
        st.header("Filters")
        selected_types = st.session_state.get("f_types", [])
        types = sorted(set(known.file_types) | set(selected_types))
        st.multiselect(
            "File type",
            types,
            key="f_types",
            format_func=lambda t: f"{t} ({known.file_types.get(t, 0)})",
            placeholder="All types",
        )
        selected_tags = st.session_state.get("f_tags", [])
        tags = list(known.tags) + [t for t in selected_tags if t not in known.tags]
        st.multiselect(
            "Tags",
            tags,
            key="f_tags",
            format_func=lambda t: f"{t} ({known.tags.get(t, 0)})",
            placeholder="Any tags" if tags else "No tags in the index",
        )
        st.radio(
            "Documents with",
            ["any", "all"],
            key="f_tags_mode",
            format_func=lambda m: f"{m} of the tags",
            horizontal=True,
        )
        st.text_input(
            "Folder", key="f_path", placeholder="/path/to/folder", help="path prefix"
        )
        since_col, until_col = st.columns(2)
        since_col.date_input("From", key="f_since", value=None, format="YYYY-MM-DD")
        until_col.date_input("To", key="f_until", value=None, format="YYYY-MM-DD")
        st.slider("Results", 1, url.MAX_PAGE_TOP_K, key="f_k")
        st.button("Clear filters", on_click=_clear_filters, width="stretch")


def _state() -> url.PageState:
    s = st.session_state
    return url.PageState(
        query=(s.get("q") or "").strip(),
        top_k=int(s.get("f_k") or url.DEFAULT_TOP_K),
        file_types=tuple(s.get("f_types") or ()),
        tags=tuple(s.get("f_tags") or ()),
        tags_mode=s.get("f_tags_mode") or "any",
        path_prefix=(s.get("f_path") or "").strip(),
        since=_day(s.get("f_since")),
        until=_day(s.get("f_until")),
        like=s.get("like"),
        mode=s.get("f_mode") or DEFAULT_MODE.value,
    )


def _day(value: object) -> date | None:
    return value if isinstance(value, date) else None


def _download(
    result: DocumentResult, found: DocumentFile | str, viewer: Viewer
) -> None:
    """A download of the document's file, served only as search.download allows."""
    if isinstance(found, str):
        st.caption(found)
        return
    app = runtime().app

    def data() -> bytes:
        return read_document_file(
            app.engine,
            result.document_id,
            viewer.access,
            app.settings.max_file_bytes,
        )

    st.download_button(
        "Download",
        data=data,
        file_name=found.name,
        mime=found.mime,
        key=f"download-{result.document_id}",
        on_click="ignore",
        icon=":material/download:",
    )


def _focus(results: list[DocumentResult], query: str) -> dict[tuple[str, int], str]:
    """The best sentence of the best passages that share no word with the query.

    Only the best passage of the first documents: each costs a few sentence
    encodings the first time it is shown (they are kept across searches).
    """
    if not query:
        return {}
    terms = query_terms(query)
    quiet = [
        r.best
        for r in results[:FOCUSED_DOCUMENTS]
        if not term_spans(r.best.text, terms)
    ]
    if not quiet:
        return {}
    shared = runtime()
    sentences = best_sentences(
        [p.text for p in quiet],
        shared.searcher.query_vector(query),
        shared.sentence_vectors,
    )
    return {
        (p.document_id, p.chunk_ordinal): sentence
        for p, sentence in zip(quiet, sentences, strict=True)
        if sentence
    }


def _render(results: list[DocumentResult], query: str, viewer: Viewer) -> None:
    st.html(PASSAGE_STYLE)
    focus = _focus(results, query)
    files = find_document_files(
        runtime().app.engine, [r.document_id for r in results], viewer.access
    )
    for rank, result in enumerate(results, start=1):
        with st.container(border=True):
            head, actions = st.columns([5, 1])
            when = (result.best.metadata.get("date") or "")[:10]
            details = " · ".join(
                part
                for part in (
                    result.file_type.upper(),
                    when,
                    f"score {result.score:.3f}",
                )
                if part
            )
            head.markdown(
                f"**{rank}. {_escape(result.title or Path(result.path).name)}**"
            )
            head.caption(f"{result.path}  \n{details}")
            with actions:
                _download(result, files[result.document_id], viewer)
            for passage in result.passages:
                page = f"page {passage.page} · " if passage.page is not None else ""
                key = (passage.document_id, passage.chunk_ordinal)
                cut = snippet(passage.text, query, focus=focus.get(key))
                marked = highlight_html(cut, query)
                st.markdown(
                    f'<div class="semsearch-passage">{marked}</div>',
                    unsafe_allow_html=True,
                )
                info, button = st.columns([5, 1])
                info.caption(f"{page}passage score {passage.score:.3f}")
                button.button(
                    "More like this",
                    key=f"like-{passage.document_id}-{passage.chunk_ordinal}",
                    on_click=_more_like,
                    args=(passage.document_id, passage.chunk_ordinal),
                    type="tertiary",
                )


def _escape(text: str) -> str:
    """Markdown-safe text for a title."""
    return "".join("\\" + c if c in "\\`*_{}[]<>()#+-.!|~$" else c for c in text)


def page() -> None:
    _seed_from_url()
    for problem in st.session_state.pop("url_problems", ()):
        st.warning(f"Ignored a link parameter: {problem}")
    viewer = current_viewer()
    searcher = runtime().searcher
    _sidebar(facets(viewer.cache_key))

    st.text_input(
        "Search",
        key="q",
        placeholder="Ask a question or type words to find",
        label_visibility="collapsed",
        icon=":material/search:",
    )
    state = _state()
    query, truncated = searcher.bound(state.query)
    if truncated:
        state = replace(state, query=query)
        st.warning(
            f"The query was cut to its first {searcher.max_query_chars} characters.",
            icon=":material/content_cut:",
        )
    st.query_params.from_dict(url.to_query_params(state))

    if indexed_documents(viewer.cache_key) == 0:
        if not viewer.may_manage:
            st.info("There are no documents here that you may read yet.")
            return
        st.info(
            "The index is empty. Add documents on the **Library** page, or run "
            "`semsearch ingest FOLDER` in a terminal.",
            icon=":material/info:",
        )
        st.page_link(
            "views/library.py", label="Go to the Library", icon=":material/folder_open:"
        )
        return

    app = runtime().app
    if not app.store.collection_exists(app.collection):
        st.warning(
            "The documents were indexed by an older version of semsearch, whose "
            "index this one cannot search. Ingest your folders again (the "
            "Library page, or `semsearch ingest FOLDER`): the stored embeddings "
            "are reused, so it is quick.",
            icon=":material/update:",
        )
        return

    filters = state.filters()
    started = time.perf_counter()
    if state.like is not None:
        document_id, ordinal = state.like
        hits = searcher.more_like(
            document_id,
            ordinal,
            state.top_k * (PASSAGES_PER_DOCUMENT + 1),
            filters,
            principal=viewer.principal,
        )
        results = group_hits(hits, PASSAGES_PER_DOCUMENT)[: state.top_k]
        highlight = ""
        st.button(
            "Back to the search", on_click=_back_to_search, icon=":material/arrow_back:"
        )
        label = "passages like the one chosen"
    elif state.query:
        results = searcher.search_documents(
            state.query,
            state.top_k,
            filters,
            passages=PASSAGES_PER_DOCUMENT,
            mode=state.mode,
            principal=viewer.principal,
        )
        highlight = state.query
        label = "documents"
    else:
        st.caption(
            f"{indexed_documents(viewer.cache_key)} documents to search. "
            "Type a query and press Enter."
        )
        return
    elapsed_ms = (time.perf_counter() - started) * 1000

    if not results:
        if state.filtered:
            st.info("No documents match these filters. Try dropping some of them.")
            st.button("Clear filters", on_click=_clear_filters, key="clear-empty")
        else:
            st.info("No documents match. Try other words.")
        return
    st.caption(f"{len(results)} {label} in {elapsed_ms:.0f} ms")
    _render(results, highlight, viewer)


_started = time.perf_counter()
with shown_errors():
    page()
# What this run of the page cost the server (bench/ui.py reads it).
st.session_state["render_ms"] = (time.perf_counter() - _started) * 1000
