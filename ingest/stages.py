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
    dropped. ``depth`` bounds the items waiting before each threaded step:
    ``put`` blocks while the first of them is that far behind. The first
    ``inline`` steps run in ``put`` instead, in the caller's thread (all of
    them: the steps in turn, which is what the overlap is measured against).
    """

    def __init__(
        self,
        steps: Sequence[Callable[[Any], Any]],
        depth: int = 2,
        name: str = "stage",
        inline: int = 0,
    ) -> None:
        if not steps:
            raise ValueError("Stages needs at least one step")
        if not 0 <= inline <= len(steps):
            raise ValueError(f"inline must be 0 to {len(steps)}, not {inline}")
        self._inline = list(steps[:inline])
        threaded = list(steps[inline:])
        self._queues: list[queue.Queue[Any]] = [
            queue.Queue(maxsize=depth) for _ in threaded
        ]
        self._error: BaseException | None = None
        self._failed = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._run,
                args=(number, step),
                name=f"{name}-{inline + number}",
                daemon=True,
            )
            for number, step in enumerate(threaded)
        ]
        for thread in self._threads:
            thread.start()
        self._closed = False

    def put(self, item: Any) -> None:
        """Hand an item to the first step; raises a step's error, if one failed."""
        self._raise_failure()
        for step in self._inline:
            item = step(item)
        if self._queues:
            self._queues[0].put(item)

    def close(self) -> None:
        """Wait until every item has gone through; raises a step's error."""
        if not self._closed and self._queues:
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
