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
"""

from __future__ import annotations

import warnings
from pathlib import Path

from bs4 import BeautifulSoup, Tag, UnusualUsageWarning
from bs4.element import NavigableString, PreformattedString

from ingest.documents import LoadedDocument, LoadError, Segment
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


def load_html(path: Path) -> LoadedDocument:
    """Load an HTML file; LoadError if it is binary, empty, textless or unreadable."""
    whole = read_whole(path)
    if not whole.data.strip():
        raise LoadError("empty file", path)
    check_not_binary(whole.data, path)

    # These warnings are about the markup we were handed (it looks like a URL,
    # it is XHTML); the parse is still what we want.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusualUsageWarning)
        soup = BeautifulSoup(whole.data, "html.parser")

    title = _title(soup)
    meta = _meta(soup)
    text = "\n\n".join(extract_blocks(soup))
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


def extract_blocks(soup: BeautifulSoup) -> list[str]:
    """The main text of a parsed page as blocks, in document order.

    Drops the unwanted elements from ``soup`` (it is changed in place).
    """
    container = soup.find("main") or soup.find("article") or soup.find("body")
    root: Tag = container if isinstance(container, Tag) else soup
    for name in _DROPPED:
        for element in root.find_all(name):
            element.decompose()

    blocks: list[str] = []
    pieces: list[str] = []
    current: Tag | None = None

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
        block = _enclosing_block(node, root)
        if block is not current:
            flush()
            current = block
        pieces.append(str(node))
    flush()
    return blocks


def _enclosing_block(node: NavigableString, root: Tag) -> Tag:
    for parent in node.parents:
        if parent is root or parent.name in _BLOCKS:
            return parent
    return root


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
