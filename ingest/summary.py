"""What one ingest run did, for the terminal, ``--json`` and the job record."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class IngestSummary:
    """Counts of one run. ``chunks`` are those of the documents (re)indexed;
    of their texts, ``chunks_encoded`` went through the model and
    ``chunks_reused`` came from the embedding cache."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    removed: int = 0
    chunks: int = 0
    chunks_encoded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    # The run ended early, told to stop (a worker shutting down).
    stopped: bool = False

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> IngestSummary:
        """The summary of a job, as :meth:`as_dict` recorded it."""
        fields = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**fields)

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.seconds if self.seconds > 0 else 0.0

    def add_failure(self, path: str, reason: str) -> None:
        self.failed += 1
        self.failures.append({"path": path, "error": reason})

    def as_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["seconds"] = round(self.seconds, 3)
        result["chunks_per_s"] = round(self.chunks_per_s, 1)
        return result

    def one_line(self) -> str:
        return (
            f"{self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.failed} failed, {self.removed} removed; {self.chunks} chunks "
            f"in {self.seconds:.1f} s ({self.chunks_per_s:.1f} chunks/s)"
        )
