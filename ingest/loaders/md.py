"""Markdown (``.md``, ``.markdown``): decoded like plain text, read whole.

YAML front matter, a block between a first line ``---`` and the next line
``---``, gives ``title``, ``tags`` (a list or a comma string), ``date``, ``author`` and
``groups`` (who may read it, given as tags are); other keys are ignored. The
front matter is not indexed: the document text, and so every segment offset,
starts just after its closing line. Front matter that is not valid YAML, or
not a mapping, is left in the text (it is all we can index) and a warning is
logged; the file still loads, unless that front matter names ``groups``: a
document that meant to restrict its readers is refused, never made public.

The title falls back to the first ``# heading`` outside fenced code, then to
the file stem. The Markdown source is indexed as it is, markup included.
Files are read whole, so a Markdown file costs its size in memory, within
``Limits.max_bytes``. Front matter over 64 KB, or nesting lists and mappings
more than 64 deep, counts as invalid YAML without being parsed.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import yaml  # type: ignore[import-untyped]

from ingest.documents import Limits, LoadedDocument, LoadError, Segment
from ingest.loaders._files import read_whole
from ingest.loaders._meta import Metadata, as_utc, authors, clean_text, split_tags
from ingest.loaders._text import decode_whole

logger = logging.getLogger(__name__)

_OPENING = re.compile(r"---[ \t]*\r?\n")
_CLOSING = re.compile(r"^---[ \t]*(?:\r?\n|\Z)", re.MULTILINE)
_HEADING = re.compile(r"#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r"(```|~~~)")
_BRACKETS = re.compile(r"[\[\]{}]")
# Front matter is a few lines; PyYAML is pure Python and recursive, and its
# scanner slows quadratically with nesting (1000 nested lists took seconds
# before failing), so a bigger or deeper block is not parsed at all.
_MAX_FRONT_MATTER_CHARS = 64 * 1024
_MAX_FLOW_DEPTH = 64


def load_md(path: Path, limits: Limits | None = None) -> LoadedDocument:
    """Load a Markdown file; LoadError if it is binary, empty, unreadable or
    beyond ``limits`` (default: :class:`~ingest.documents.Limits`)."""
    whole = read_whole(path, limits or Limits())
    text = decode_whole(whole.data, path)
    meta, body = split_front_matter(text, path)
    if not body.strip():
        raise LoadError("no text after front matter", path)

    return LoadedDocument(
        path=path,
        file_type="md",
        title=meta.title or first_heading(body) or path.stem,
        author=meta.author,
        tags=meta.tags,
        groups=meta.groups,
        date=meta.date,
        size_bytes=whole.facts.size_bytes,
        modified_at=whole.facts.modified_at,
        content_hash=whole.content_hash,
        segments=[Segment(body, 0)],
    )


_GROUPS_KEY = re.compile(r"^\s*groups\s*:", re.MULTILINE)


def split_front_matter(text: str, path: Path) -> tuple[Metadata, str]:
    """The front matter of ``text`` and the text after it.

    Without usable front matter, the metadata is empty and the text is whole.
    """
    opening = _OPENING.match(text)
    if opening is None:
        return Metadata(), text
    closing = _CLOSING.search(text, opening.end())
    if closing is None:
        return Metadata(), text

    block = text[opening.end() : closing.start()]
    names_groups = _GROUPS_KEY.search(block) is not None
    values, problem = _parse_yaml(block)
    if problem is not None:
        if names_groups:
            raise LoadError(
                f"front matter names groups but is not valid YAML ({problem})", path
            )
        logger.warning("%s: front matter is not valid YAML (%s); kept", path, problem)
        return Metadata(), text
    if values is None:
        values = {}
    if not isinstance(values, dict):
        if names_groups:
            raise LoadError("front matter names groups but is not a mapping", path)
        logger.warning("%s: front matter is not a mapping; kept as text", path)
        return Metadata(), text

    meta = Metadata(
        title=clean_text(values.get("title")),
        author=authors(values.get("author")),
        tags=split_tags(values.get("tags")),
        date=as_utc(values.get("date")),
        groups=split_tags(values.get("groups")),
    )
    # Groups given as a mapping or nested lists yield no name: refused, since
    # loading would make public a document meant to be restricted.
    if values.get("groups") and not meta.groups:
        raise LoadError("front matter groups are not a list of names", path)
    return meta, text[closing.end() :]


def _parse_yaml(block: str) -> tuple[object, str | None]:
    """The YAML value of ``block``, or None and why it is not usable (a short
    reason naming a line and a column at most, never the text itself)."""
    if len(block) > _MAX_FRONT_MATTER_CHARS:
        return None, f"over {_MAX_FRONT_MATTER_CHARS // 1024} KB"
    if _flow_depth(block) > _MAX_FLOW_DEPTH:
        return None, "nested too deeply"
    try:
        return yaml.safe_load(block), None
    except RecursionError:
        return None, "nested too deeply"
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        return None, getattr(exc, "problem", None) or type(exc).__name__


def _flow_depth(block: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in ``block``, quotes ignored:
    an overcount only refuses front matter nobody writes."""
    depth = deepest = 0
    for bracket in _BRACKETS.finditer(block):
        if bracket.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(depth - 1, 0)
    return deepest


def first_heading(text: str) -> str | None:
    """The text of the first level-1 ATX heading outside fenced code, or None."""
    fence: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        marker = _FENCE.match(stripped)
        if marker is not None:
            if fence is None:
                fence = marker.group(1)
            elif fence == marker.group(1):
                fence = None
            continue
        if fence is None and (heading := _HEADING.fullmatch(stripped)):
            return clean_text(heading.group(1))
    return None
