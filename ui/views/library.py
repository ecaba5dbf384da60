"""The library page: what is indexed, adding documents, removing them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit as st
from sqlalchemy.orm import Session

from ingest.loaders import FILE_TYPES
from ingest.pipeline import IngestOptions, remove_document
from ingest.summary import IngestSummary
from ingest.walk import walk
from search.access import Access, parse_groups
from search.catalog import repository as repo
from search.errors import InvalidInputError
from ui.identity import current_viewer
from ui.resources import runtime, shown_errors

TABLE_ROWS = 1000
GROUPS_HELP = (
    "Who may read these documents. With none, the documents are public, or "
    "admins' only when SEMSEARCH_UNGROUPED=private. Front matter groups and "
    "the access rules file add to these."
)
STATUSES = ("all", "indexed", "failed", "pending")


def _documents(access: Access) -> list[dict[str, Any]]:
    with Session(runtime().app.engine) as session:
        return [
            {
                "id": d.id,
                "title": d.title or Path(d.source_path).name,
                "path": d.source_path,
                "type": d.file_type,
                "status": d.status,
                "error": d.error or "",
                "chunks": d.chunk_count,
                "size_kb": round((d.size_bytes or 0) / 1024, 1),
                "modified": d.modified_at,
                "indexed": d.indexed_at,
                "tags": ", ".join(d.tags or []),
                "groups": ", ".join(d.access_groups),
            }
            for d in repo.list_documents(session, access)
        ]


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _run_ingest(paths: list[Path], tags: list[str], groups_text: str) -> None:
    groups = parse_groups(groups_text)
    total = sum(1 for _ in walk(paths))
    bar = st.progress(0.0, text=f"Ingesting {total} files ...")
    done = 0

    def advance(source: str) -> None:
        nonlocal done
        done += 1
        bar.progress(
            min(done / max(total, 1), 1.0),
            text=f"{done} of {total}: {Path(source).name}",
        )

    options = IngestOptions(tags=tags, groups=groups)
    summary = runtime().ingest(paths, options, progress=advance)
    bar.empty()
    st.cache_data.clear()
    _show_summary(summary)


def _show_summary(summary: IngestSummary) -> None:
    message = summary.one_line()
    if summary.failed:
        st.warning(message)
        for failure in summary.failures:
            st.caption(f"failed: {failure['path']}: {failure['error']}")
    else:
        st.success(message)


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^\w.\- ]+", "_", Path(name).name).strip(" .")
    if not cleaned:
        raise InvalidInputError(f"cannot store an upload named {name!r}")
    return cleaned


def _add_section() -> None:
    st.subheader("Add documents")
    folder_tab, upload_tab = st.tabs(["From a folder", "Upload files"])
    with folder_tab, st.form("ingest-folder", border=False):
        path_text = st.text_input(
            "Folder or file on the server", placeholder="/srv/documents", key="lib-path"
        )
        tags_text = st.text_input("Tags (comma separated)", key="folder-tags")
        folder_groups = st.text_input(
            "Access groups (comma separated)", key="folder-groups", help=GROUPS_HELP
        )
        if st.form_submit_button("Ingest", type="primary"):
            if not path_text.strip():
                st.warning("Give a folder or file path.")
            else:
                path = Path(path_text.strip()).expanduser()
                if not path.exists():
                    st.error(f"{path} does not exist on the server.")
                else:
                    _run_ingest([path], _tags(tags_text), folder_groups)
    with upload_tab, st.form("upload", border=False, clear_on_submit=True):
        files = st.file_uploader(
            "Files",
            type=sorted(e.lstrip(".") for e in FILE_TYPES),
            accept_multiple_files=True,
        )
        tags_text = st.text_input("Tags (comma separated)", key="upload-tags")
        upload_groups = st.text_input(
            "Access groups (comma separated)", key="upload-groups", help=GROUPS_HELP
        )
        if st.form_submit_button("Add", type="primary"):
            if not files:
                st.warning("Choose one or more files first.")
            else:
                folder = runtime().app.settings.data_dir.resolve() / "uploads"
                folder.mkdir(parents=True, exist_ok=True)
                saved = []
                for upload in files:
                    target = folder / _safe_name(upload.name)
                    target.write_bytes(upload.getvalue())
                    saved.append(target)
                _run_ingest(saved, _tags(tags_text), upload_groups)


def _table_section(documents: list[dict[str, Any]], may_manage: bool) -> None:
    st.subheader("Documents")
    text_col, status_col = st.columns([3, 1])
    needle = text_col.text_input(
        "Find",
        placeholder="title or path",
        label_visibility="collapsed",
        key="lib-find",
    ).casefold()
    status = status_col.selectbox(
        "Status",
        STATUSES,
        label_visibility="collapsed",
        format_func=str.capitalize,
        key="lib-status",
    )
    shown = [
        d
        for d in documents
        if (status == "all" or d["status"] == status)
        and (needle in d["title"].casefold() or needle in d["path"].casefold())
    ]
    counts = {s: sum(1 for d in documents if d["status"] == s) for s in STATUSES[1:]}
    st.caption(
        f"{len(shown)} of {len(documents)} documents ("
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        + ")"
        + (f"; the first {TABLE_ROWS} are listed" if len(shown) > TABLE_ROWS else "")
    )
    st.dataframe(
        [{k: v for k, v in d.items() if k != "id"} for d in shown[:TABLE_ROWS]],
        hide_index=True,
        width="stretch",
        column_config={
            "path": st.column_config.TextColumn("path", width="large"),
            "error": st.column_config.TextColumn("error", width="medium"),
            "modified": st.column_config.DatetimeColumn(
                "modified", format="YYYY-MM-DD"
            ),
            "indexed": st.column_config.DatetimeColumn(
                "indexed", format="YYYY-MM-DD HH:mm"
            ),
        },
    )
    if may_manage:
        _remove_section(shown)


def _remove(document_id: str, path: str) -> None:
    """Runs before the page is drawn again, so the table no longer lists it."""
    removed = remove_document(runtime().app, document_id)
    st.cache_data.clear()
    st.session_state["lib-removed"] = (
        f"Removed {path} from the index." if removed else f"{path} was already gone."
    )


def _remove_section(documents: list[dict[str, Any]]) -> None:
    if not documents:
        return
    with st.expander("Remove a document"):
        by_id = {d["id"]: d for d in documents[:TABLE_ROWS]}
        chosen = st.selectbox(
            "Document",
            list(by_id),
            format_func=lambda i: f"{by_id[i]['title']} — {by_id[i]['path']}",
            key="lib-remove",
        )
        st.caption("It leaves the index; the file itself is not touched.")
        if chosen is not None:
            st.button(
                "Remove from the index",
                on_click=_remove,
                args=(chosen, by_id[chosen]["path"]),
            )


def page() -> None:
    st.title("Library")
    viewer = current_viewer()
    if message := st.session_state.pop("lib-removed", None):
        st.success(message)
    if viewer.may_manage:
        _add_section()
    documents = _documents(viewer.access)
    if not documents:
        st.info(
            "No documents yet. Ingest a folder above, or run "
            "`semsearch ingest FOLDER` in a terminal."
            if viewer.may_manage
            else "There are no documents here that you may read."
        )
        return
    _table_section(documents, viewer.may_manage)


with shown_errors():
    page()
