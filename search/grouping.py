"""Chunk hits gathered into one result per document, best document first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from search.retrieval import Hit


@dataclass(frozen=True)
class DocumentResult:
    """One document of a result page: its best passages, best first.

    ``score`` is the best passage's score, so documents rank as their best
    chunk does and a long document is not favoured for having many chunks.
    """

    document_id: str
    score: float
    passages: tuple[Hit, ...]

    @property
    def best(self) -> Hit:
        return self.passages[0]

    @property
    def title(self) -> str:
        return self.best.title

    @property
    def path(self) -> str:
        return self.best.path

    @property
    def file_type(self) -> str:
        return self.best.file_type


def group_hits(
    hits: Sequence[Hit], passages_per_document: int = 3
) -> list[DocumentResult]:
    """Group ``hits`` (best first) by document, keeping each one's best passages.

    Documents keep the order of their best hit; within a document passages
    keep their rank, at most ``passages_per_document`` of them.
    """
    if passages_per_document < 1:
        raise ValueError("passages_per_document must be at least 1")
    grouped: dict[str, list[Hit]] = {}
    for hit in sorted(hits, key=lambda h: -h.score):
        passages = grouped.setdefault(hit.document_id, [])
        if len(passages) < passages_per_document:
            passages.append(hit)
    return [
        DocumentResult(document_id, passages[0].score, tuple(passages))
        for document_id, passages in grouped.items()
    ]
