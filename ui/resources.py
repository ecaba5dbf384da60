"""What the UI's pages share: one App per server process, and its job runner.

Streamlit reruns a page's script on every interaction; the encoder, the
catalog engine and the vector store are cached resources, so that every
search after the first costs only encoding and the store query. The UI
holds the embedded store, so `semsearch ingest` run elsewhere hands its jobs
to this process: a background thread runs them, one at a time with the
page's own ingests.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import streamlit as st

from ingest import jobs
from ingest.pipeline import IngestOptions
from ingest.summary import IngestSummary
from search.app import App
from search.errors import SemsearchError
from search.retrieval import Searcher
from search.settings import load_settings

logger = logging.getLogger(__name__)


SENTENCE_CACHE = 4096


class SentenceVectors:
    """Embeddings of passage sentences, kept across searches (an LRU).

    A passage's sentences do not depend on the query, so the snippets of a
    passage seen before cost no encoding.
    """

    def __init__(self, encoder: Any, size: int = SENTENCE_CACHE) -> None:
        self._encoder = encoder
        self._size = size
        self._vectors: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, sentences: list[str]) -> npt.NDArray[np.float32]:
        with self._lock:
            missing = [s for s in dict.fromkeys(sentences) if s not in self._vectors]
        if missing:
            encoded = self._encoder.encode(missing)
            with self._lock:
                self._vectors.update(zip(missing, encoded, strict=True))
                while len(self._vectors) > self._size:
                    self._vectors.popitem(last=False)
        with self._lock:
            rows = []
            for sentence in sentences:
                vector = self._vectors.get(sentence)
                if vector is None:  # evicted meanwhile by another session
                    vector = self._encoder.encode(sentence)
                else:
                    self._vectors.move_to_end(sentence)
                rows.append(vector)
        return np.stack(rows)


# How often a page run looks whether a reindex switched the index.
ACTIVE_CHECK_S = 5.0


@dataclass
class Runtime:
    """The App, its searcher, and the lock that keeps ingests one at a time."""

    app: App
    searcher: Searcher
    ingest_lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    _runner: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.sentence_vectors = SentenceVectors(self.searcher.encoder)
        self._checked_at = time.monotonic()
        self._following = threading.Lock()

    def follow_active(self) -> None:
        """Move the searcher to the index a reindex switched to, if it did.

        Looked up at most every ACTIVE_CHECK_S, and only while no ingest runs
        here (a run keeps the index it began with). Searches already under
        way finish on the old collection, which a reindex keeps.
        """
        now = time.monotonic()
        if now - self._checked_at < ACTIVE_CHECK_S or not self._following.acquire(
            blocking=False
        ):
            return
        try:
            self._checked_at = now
            if self.ingest_lock.acquire(blocking=False):
                try:
                    self.app.refresh_active()
                finally:
                    self.ingest_lock.release()
            if self.app.collection != self.searcher.collection:
                searcher = Searcher.for_app(self.app)  # loads the new model
                self.sentence_vectors = SentenceVectors(searcher.encoder)
                self.searcher = searcher
                logger.info("Searching %s now", self.app.collection)
        finally:
            self._following.release()

    def ingest(
        self,
        paths: list[Path],
        options: IngestOptions,
        progress: Callable[[str], None] | None = None,
    ) -> IngestSummary:
        """Run an ingest here and now (recorded as a job, like the CLI's)."""
        with self.ingest_lock:
            job_id = jobs.enqueue(self.app, jobs.ingest_params(paths, options))
            summary = jobs.run_claimed(self.app, job_id, progress=progress)
        assert isinstance(summary, IngestSummary)
        return summary

    def start_job_runner(self) -> None:
        self._runner = threading.Thread(
            target=self.run_handed_over_jobs, name="semsearch-jobs", daemon=True
        )
        self._runner.start()

    def close(self) -> None:
        """Stop the job runner and release the store (its lock among it)."""
        self.stop.set()
        if self._runner is not None:
            self._runner.join(timeout=60)
        with self.ingest_lock:
            self.app.close()

    def run_handed_over_jobs(self, poll_s: float = 1.0) -> None:
        """Run jobs queued by other processes until the server stops.

        A failing job is recorded and logged by the loop; a catalog that is
        down stops it, and it starts again after ``poll_s``.
        """
        while not self.stop.is_set():
            try:
                jobs.run_queued(self.app, self.stop, poll_s, lock=self.ingest_lock)
            except Exception:
                logger.exception("The queued-jobs loop stopped; starting it again")
                self.stop.wait(poll_s)


def runtime() -> Runtime:
    """The Runtime for the settings the environment gives (``SEMSEARCH_*``)."""
    # One Runtime per server process: its settings are read when it opens,
    # and the environment does not change under a running server. (Opening a
    # second one would find the embedded store held by the first.)
    return _open()


def _release(shared: Runtime) -> None:
    shared.close()


@st.cache_resource(
    show_spinner="Opening the index and loading the model ...", on_release=_release
)
def _open() -> Runtime:
    app = App(load_settings(), role="ui")
    try:
        app.engine  # noqa: B018 - open (and upgrade) the catalog now
        app.store  # noqa: B018 - take the embedded store, so ingest hands jobs over
        app.encoder  # noqa: B018 - load the model now, not on the first search
        searcher = Searcher.for_app(app)
    except BaseException:
        app.close()
        raise
    shared = Runtime(app, searcher)
    if app.settings.embedded_store:
        shared.start_job_runner()
    return shared


@contextmanager
def shown_errors() -> Iterator[None]:
    """Show errors as a message on the page, never as a traceback."""
    try:
        yield
    except SemsearchError as exc:
        st.error(str(exc), icon=":material/error:")
    except OSError as exc:
        st.error(f"{exc.strerror or exc} ({exc.filename or 'no file'})")
    except Exception as exc:
        logger.exception("Unexpected error in the UI")
        st.error(
            f"Something went wrong ({type(exc).__name__}: {exc}). "
            "The server log has the details.",
            icon=":material/error:",
        )
