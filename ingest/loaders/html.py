"""HTML (``.html``, ``.htm``), parsed whole with BeautifulSoup's "html.parser".

The title is the ``<title>``, else the first ``<h1>``, else the file stem;
``<meta name="author">`` and ``<meta name="keywords">`` give the author and the
tags. The text comes from ``<main>``, else ``<article>``, else ``<body>``, else
the whole page, without ``script``, ``style``, ``nav``, ``header``, ``footer``,
``aside``, ``noscript``, ``template`` and ``title`` elements. Each block element (a
paragraph, heading, list item, table row...) becomes one block with its
whitespace collapsed, except ``<pre>`` whose text is kept as it is; blocks are
joined by a blank line. Table cells in a row are separated by a space.

The encoding is BeautifulSoup's guess (a BOM, a ``<meta charset>``, else a
sniff of the bytes). Elements hidden by CSS or by the ``hidden`` attribute are
indexed like the rest.

The file is read whole, so ``Limits.max_bytes`` bounds it. Parsing and
extraction take time linear in the file, however deep the nesting (100,000
nested elements parse in a few seconds); should the parser still fail (a
RecursionError, markup it rejects), the file is a LoadError, never a crash.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from bs4 import BeautifulSoup, Tag, UnusualUsageWarning
from bs4.element import NavigableString, PreformattedString

from ingest.documents import Limits, LoadedDocument, LoadError, Segment
from ingest.loaders._files import read_whole
from ingest.loaders._meta import authors, clean_text, split_tags
from ingest.loaders._text import check_not_binary

_DROPPED = (
    "script",
    "style",
    "nav",
    "header",
    "footer",
    "aside",
    "noscript",
    "template",
    "head",
    "title",
)
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "blockquote",
        "caption",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "li",
        "main",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tr",
        "ul",
    ]
)
# Elements that separate words without starting a block.
_BREAKS = {"br": "\n", "td": " ", "th": " "}
# Longest library message kept in a LoadError reason.
_REASON_CHARS = 160


def load_html(path: Path, limits: Limits | None = None) -> LoadedDocument:
    """Load an HTML file; LoadError if it is binary, empty, textless, unreadable
    or beyond ``limits`` (default: :class:`~ingest.documents.Limits`)."""
    whole = read_whole(path, limits or Limits())
    if not whole.data.strip():
        raise LoadError("empty file", path)
    check_not_binary(whole.data, path)

    try:
        title, meta, text = _parse(whole.data)
    except RecursionError as exc:
        raise LoadError("HTML nested too deeply to parse", path) from exc
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise LoadError(f"corrupt HTML: {message[:_REASON_CHARS]}", path) from exc
    if not text:
        raise LoadError("no text in HTML", path)

    return LoadedDocument(
        path=path,
        file_type="html",
        title=title or path.stem,
        author=authors(meta.get("author")),
        tags=split_tags(meta.get("keywords", "")),
        date=None,
        size_bytes=whole.facts.size_bytes,
        modified_at=whole.facts.modified_at,
        content_hash=whole.content_hash,
        segments=[Segment(text, 0)],
    )


def _parse(data: bytes) -> tuple[str | None, dict[str, str], str]:
    """The title, the ``<meta>`` pairs and the text of a page's bytes."""
    # These warnings are about the markup we were handed (it looks like a URL,
    # it is XHTML); the parse is still what we want.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusualUsageWarning)
        soup = BeautifulSoup(data, "html.parser")
    return _title(soup), _meta(soup), "\n\n".join(extract_blocks(soup))


def extract_blocks(soup: BeautifulSoup) -> list[str]:
    """The main text of a parsed page as blocks, in document order.

    Drops the unwanted elements from ``soup`` (it is changed in place).
    """
    container = soup.find("main") or soup.find("article") or soup.find("body")
    root: Tag = container if isinstance(container, Tag) else soup
    for name in _DROPPED:
        for element in root.find_all(name):
            # Those inside one dropped already are gone with it.
            if not element.decomposed:
                element.decompose()

    blocks: list[str] = []
    pieces: list[str] = []
    current: Tag | None = None
    block_of: dict[int, Tag] = {}

    def flush() -> None:
        joined = "".join(pieces)
        is_pre = current is not None and current.name == "pre"
        block = joined.strip("\n") if is_pre else " ".join(joined.split())
        if block.strip():
            blocks.append(block)
        pieces.clear()

    # Iterative, so that deeply nested markup cannot exhaust the stack.
    for node in root.descendants:
        if isinstance(node, Tag):
            if node.name in _BREAKS:
                pieces.append(_BREAKS[node.name])
            continue
        if not isinstance(node, NavigableString) or isinstance(
            node, PreformattedString
        ):
            continue
        block = _enclosing_block(node, root, block_of)
        if block is not current:
            flush()
            current = block
        pieces.append(str(node))
    flush()
    return blocks


def _enclosing_block(node: NavigableString, root: Tag, block_of: dict[int, Tag]) -> Tag:
    """The nearest block element above ``node``, else ``root``.

    ``block_of`` remembers the answer for every inline element climbed (by
    id: the tree outlives it), so a page costs time linear in its size; without
    it, text deep in 20,000 nested ``<span>`` took half a minute.
    """
    climbed: list[Tag] = []
    parent = node.parent
    while parent is not None and parent is not root and parent.name not in _BLOCKS:
        known = block_of.get(id(parent))
        if known is not None:
            parent = known
            break
        climbed.append(parent)
        parent = parent.parent
    block = parent if parent is not None else root
    for tag in climbed:
        block_of[id(tag)] = block
    return block


def _title(soup: BeautifulSoup) -> str | None:
    for name in ("title", "h1"):
        element = soup.find(name)
        if isinstance(element, Tag) and (text := clean_text(element.get_text())):
            return text
    return None


def _meta(soup: BeautifulSoup) -> dict[str, str]:
    """``<meta name=... content=...>`` pairs, names lowercased, first one wins."""
    found: dict[str, str] = {}
    for element in soup.find_all("meta"):
        name, content = element.get("name"), element.get("content")
        if isinstance(name, str) and isinstance(content, str):
            found.setdefault(name.strip().lower(), content)
    return found
