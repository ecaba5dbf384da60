"""Steps of work that overlap: each in a thread of its own, over bounded queues.

Ingest reads and chunks files, encodes chunks and writes points and catalog
rows. Run one after the other, the encoder waits while files are parsed and
while Qdrant and the catalog answer; as :class:`Stages`, batch n+1 is read
while batch n is encoded and batch n-1 written, in order, with at most
``depth`` batches waiting between two steps (memory stays bounded: a batch
is some 1,000 chunks).

The first error of any step (a ``BaseException`` too: a test's stand-in for
a kill) stops the flow: later items are dropped, and :meth:`Stages.put` or
:meth:`Stages.close` raises it in the caller's thread, as it was raised.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

_END = object()


class Stages:
    """Items put in go through ``steps`` in order, each step in its own thread.

    A step takes what the one before returned; the last one's result is
    dropped. ``depth`` bounds the items waiting before each step: ``put``
    blocks while the first step is that far behind. ``inline`` runs the
    steps in ``put`` instead, one after the other, in the caller's thread
    (to measure what the overlap gains: bench/ingest.py).
    """

    def __init__(
        self,
        steps: Sequence[Callable[[Any], Any]],
        depth: int = 2,
        name: str = "stage",
        inline: bool = False,
    ) -> None:
        if not steps:
            raise ValueError("Stages needs at least one step")
        self._steps = list(steps)
        self._inline = inline
        self._queues: list[queue.Queue[Any]] = [
            queue.Queue(maxsize=depth) for _ in steps
        ]
        self._error: BaseException | None = None
        self._failed = threading.Event()
        self._lock = threading.Lock()
        self._threads = (
            []
            if inline
            else [
                threading.Thread(
                    target=self._run,
                    args=(number, step),
                    name=f"{name}-{number}",
                    daemon=True,
                )
                for number, step in enumerate(steps)
            ]
        )
        for thread in self._threads:
            thread.start()
        self._closed = False

    def put(self, item: Any) -> None:
        """Hand an item to the first step; raises a step's error, if one failed."""
        self._raise_failure()
        if self._inline:
            for step in self._steps:
                item = step(item)
            return
        self._queues[0].put(item)

    def close(self) -> None:
        """Wait until every item has gone through; raises a step's error."""
        if not self._closed and not self._inline:
            self._closed = True
            self._queues[0].put(_END)
            for thread in self._threads:
                thread.join()
        self._raise_failure()

    def _run(self, number: int, step: Callable[[Any], Any]) -> None:
        inbox = self._queues[number]
        outbox = self._queues[number + 1] if number + 1 < len(self._queues) else None
        while True:
            item = inbox.get()
            if item is _END:
                if outbox is not None:
                    outbox.put(_END)
                return
            if self._failed.is_set():
                continue  # drained, so that no producer blocks on a full queue
            try:
                result = step(item)
            except BaseException as exc:
                self._fail(exc)
                continue
            if outbox is not None:
                outbox.put(result)

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if not self._failed.is_set():
                self._error = exc
                self._failed.set()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error
