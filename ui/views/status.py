"""The status page: what is indexed, with which model, on which backends."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.orm import Session

from ingest.summary import IngestSummary
from search.catalog import repository as repo
from search.filters import build_filter
from ui.identity import current_viewer
from ui.resources import runtime, shown_errors


def page() -> None:
    st.title("Status")
    viewer = current_viewer()
    shared = runtime()
    app = shared.app
    settings = app.settings
    # Counts of what this user may read, like everything else they see.
    with Session(app.engine) as session:
        documents = repo.count_documents(session, viewer.access)
        chunks = repo.count_active_chunks(session, viewer.access)
        last_job = repo.get_last_job(session)
    points = (
        app.store.count(app.collection, build_filter(None, viewer.access))
        if app.store.collection_exists(app.collection)
        else 0
    )

    columns = st.columns(4)
    columns[0].metric("Documents indexed", documents.get("indexed", 0))
    columns[1].metric("Failed", documents.get("failed", 0))
    columns[2].metric("Chunks", chunks)
    columns[3].metric("Points in the store", points)

    encoder = app.encoder
    st.subheader("Model")
    st.markdown(
        f"- **{encoder.model_name}**: {encoder.dimension} dimensions, "
        f"at most {encoder.max_seq_length} tokens per chunk\n"
        f"- device **{encoder.device}**, precision **{encoder.precision}**"
    )
    st.subheader("Backends")
    store = (
        f"Qdrant server at {settings.qdrant_url_safe}"
        if settings.qdrant_url
        else f"embedded Qdrant (qdrant-edge) in {settings.store_dir}"
    )
    catalog = (
        f"SQLite in {settings.data_dir / 'catalog.sqlite3'}"
        if settings.embedded_catalog
        else f"PostgreSQL at {settings.catalog_url_safe}"
    )
    st.markdown(
        f"- vector store: {store}, collection `{app.collection}`\n- catalog: {catalog}"
    )
    if not viewer.may_manage:
        return
    st.subheader("Last ingest")
    if last_job is None or last_job.finished_at is None:
        st.caption("No ingest has run yet.")
    elif last_job.error:
        st.error(f"{last_job.finished_at:%Y-%m-%d %H:%M} UTC: {last_job.error}")
    else:
        summary = IngestSummary.from_dict(last_job.summary or {})
        st.markdown(
            f"{last_job.finished_at:%Y-%m-%d %H:%M} UTC, "
            f"{', '.join(last_job.params.get('paths', []))}: {summary.one_line()}"
        )


with shown_errors():
    page()
