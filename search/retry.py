"""Waiting out a server that is away for a while: Qdrant or PostgreSQL.

A server that cannot be reached is *transient* trouble: a restart or a network
blip ends by itself, so the work is tried again after a wait that doubles.
Anything else (a refused request, bad input, a bug) is raised at once, since
trying again would only fail again.

One schedule (:class:`Backoff`) serves two levels:

- inside a call: :class:`~search.stores.server.ServerStore` repeats a request
  up to ``attempts`` times, waiting ``first_s``, ``2·first_s``, ... between
  tries (1 + 2 + 4 + 8 = 15 s with the defaults);
- between runs of a job (:mod:`ingest.jobs`): a job stopped by a server that
  stays down is queued again to begin after the schedule's next waits (16,
  32, 64, 128 s with the defaults), and fails after ``attempts`` runs.

Requests retried this way must be idempotent: an upsert by deterministic point
ids, a delete, a query. The messages logged and raised name the server and its
address (the errors are made that way), never a password or an API key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from search.errors import (
    CatalogUnavailableError,
    StoreRefusedError,
    StoreUnavailableError,
)

__all__ = [
    "Backoff",
    "CatalogUnavailableError",
    "StoreRefusedError",
    "is_transient",
    "with_retries",
]

if TYPE_CHECKING:
    from search.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """How often to try, and how long to wait between tries.

    ``attempts`` tries in all (at least 1); the wait before retry ``n`` is
    ``first_s · 2^(n-1)`` seconds, at most ``cap_s``. ``sleep`` is how to wait
    (tests pass one that only records the waits).
    """

    attempts: int = 5
    first_s: float = 1.0
    cap_s: float = 300.0
    sleep: Callable[[float], object] = field(
        default=time.sleep, repr=False, compare=False
    )

    @classmethod
    def from_settings(
        cls, settings: Settings, sleep: Callable[[float], object] = time.sleep
    ) -> Backoff:
        """``SEMSEARCH_RETRY_ATTEMPTS`` tries, ``SEMSEARCH_RETRY_BACKOFF_S`` first."""
        return cls(settings.retry_attempts, settings.retry_backoff_s, sleep=sleep)

    def wait_s(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1 is the first)."""
        # min() before the power would still overflow for a huge ``retry``.
        exponent = min(max(retry - 1, 0), 64)
        return min(self.cap_s, self.first_s * 2.0**exponent)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` says a server is away, so that trying later may succeed."""
    if isinstance(exc, StoreRefusedError):
        return False
    return isinstance(exc, (StoreUnavailableError, CatalogUnavailableError))


def with_retries(call: Callable[[], T], backoff: Backoff) -> T:
    """``call()``, tried again after a wait while it fails with a transient error.

    Raises the last error once ``backoff.attempts`` tries have failed, and any
    other error at once. Each retry is logged as a WARNING with the error's
    message, which names the server and its address.
    """
    retry = 0
    while True:
        try:
            return call()
        except Exception as exc:
            retry += 1
            if not is_transient(exc) or retry >= backoff.attempts:
                raise
            wait = backoff.wait_s(retry)
            logger.warning(
                "%s; retry %d of %d in %.1f s", exc, retry, backoff.attempts - 1, wait
            )
        backoff.sleep(wait)
