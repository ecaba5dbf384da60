"""Build the sample corpus's PDF and Word files from ``samples/sources/*.md``.

Usage, from the repository root::

    .venv/bin/python samples/build_binaries.py              # every source
    .venv/bin/python samples/build_binaries.py samples/sources/index-funds.md

Each source is a small Markdown file with YAML front matter::

    ---
    title: Index funds explained
    author: Marcus Ellery
    keywords: [reference, finance, investing]
    date: 2023-09-25
    output: reference/index-funds.pdf      # under samples/corpus/; .pdf or .docx
    ---

The body may use ``#`` / ``##`` / ``###`` headings, paragraphs (lines joined
until a blank line), ``- `` bullets, ``1. `` numbered items (continuation
lines indented), and ``<!-- pagebreak -->`` to start a new PDF page (ignored
in Word files). No inline formatting. PDFs use the core Helvetica font, so
their text must be latin-1; the script refuses anything else.

The output is reproducible: the PDF creation date and the Word core
properties come from the front matter, and the .docx zip entries get a fixed
timestamp, so rebuilding unchanged sources gives the same bytes (for a given
fpdf2 and python-docx version). Needs fpdf2, python-docx and PyYAML.
"""

from __future__ import annotations

import io
import re
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import docx
import yaml
from fpdf import FPDF, XPos, YPos

SAMPLES = Path(__file__).resolve().parent
SOURCES = SAMPLES / "sources"
CORPUS = SAMPLES / "corpus"
PAGEBREAK = "<!-- pagebreak -->"
MAX_BYTES = 60_000

_ITEM = re.compile(r"^(?:(-)|(\d+)\.)\s+(.*)$")


@dataclass
class Block:
    kind: str  # "h1", "h2", "h3", "p", "ul", "ol", "pagebreak"
    text: str = ""
    items: list[str] = field(default_factory=list)


@dataclass
class Source:
    path: Path
    title: str
    author: str
    keywords: list[str]
    created: datetime
    output: Path
    blocks: list[Block]


def read_source(path: Path) -> Source:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise SystemExit(f"{path}: no front matter")
    head, _, body = text[4:].partition("\n---\n")
    meta = yaml.safe_load(head)
    missing = {"title", "author", "keywords", "date", "output"} - set(meta)
    if missing:
        raise SystemExit(f"{path}: front matter lacks {', '.join(sorted(missing))}")
    day = meta["date"]
    if not isinstance(day, date):
        day = date.fromisoformat(str(day))
    keywords = meta["keywords"]
    if isinstance(keywords, str):
        keywords = [k.strip() for k in keywords.split(",") if k.strip()]
    return Source(
        path=path,
        title=str(meta["title"]),
        author=str(meta["author"]),
        keywords=[str(k) for k in keywords],
        created=datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC),
        output=CORPUS / meta["output"],
        blocks=parse_blocks(body),
    )


def parse_blocks(body: str) -> list[Block]:
    """The body as headings, paragraphs, lists and page breaks."""
    blocks: list[Block] = []
    para: list[str] = []
    current: Block | None = None  # the open list

    def flush_para() -> None:
        if para:
            blocks.append(Block("p", " ".join(para)))
            para.clear()

    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            flush_para()
            current = None
            continue
        if line == PAGEBREAK:
            flush_para()
            current = None
            blocks.append(Block("pagebreak"))
            continue
        heading = re.match(r"^(#{1,3})\s+(.*)$", line)
        if heading:
            flush_para()
            current = None
            blocks.append(Block(f"h{len(heading.group(1))}", heading.group(2)))
            continue
        item = _ITEM.match(line)
        if item and not para:
            kind = "ul" if item.group(1) else "ol"
            if current is None or current.kind != kind:
                current = Block(kind)
                blocks.append(current)
            current.items.append(item.group(3))
            continue
        if current is not None and raw[:1] == " ":
            current.items[-1] += " " + line
            continue
        current = None
        para.append(line)
    flush_para()
    return blocks


# -- PDF ---------------------------------------------------------------------


class _PDF(FPDF):
    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", size=8)
        self.set_text_color(110)
        self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0)


def _latin1(source: Source, text: str) -> str:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        problem = f"not latin-1, cannot go in a PDF: {bad!r}"
        raise SystemExit(f"{source.path}: {problem}") from None
    return text


def _lines(pdf: FPDF, height: float, text: str) -> None:
    """Wrapped text from the current x to the right margin, then a new line."""
    pdf.multi_cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def build_pdf(source: Source) -> tuple[bytes, int]:
    """The PDF's bytes and its number of pages."""
    pdf = _PDF(format="A4")
    pdf.set_margins(22, 20, 22)
    pdf.set_auto_page_break(True, margin=22)
    pdf.set_title(source.title)
    pdf.set_author(source.author)
    pdf.set_keywords(", ".join(source.keywords))
    pdf.set_subject(source.title)
    pdf.set_creator("samples/build_binaries.py")
    pdf.set_creation_date(source.created)
    pdf.set_lang("en")
    pdf.add_page()
    body = 5.6  # line height in mm for 11 pt text

    for block in source.blocks:
        if block.kind == "pagebreak":
            pdf.add_page()
            continue
        if block.kind in ("h1", "h2", "h3"):
            size = {"h1": 18, "h2": 13.5, "h3": 12}[block.kind]
            if pdf.get_y() > pdf.h - 50:  # keep a heading with its text
                pdf.add_page()
            pdf.ln(2 if block.kind == "h1" else 3)
            pdf.set_font("Helvetica", "B", size)
            _lines(pdf, size * 0.5, _latin1(source, block.text))
            pdf.ln(2)
            continue
        pdf.set_font("Helvetica", size=11)
        if block.kind == "p":
            _lines(pdf, body, _latin1(source, block.text))
            pdf.ln(2.5)
            continue
        for number, item in enumerate(block.items, start=1):
            mark = "-" if block.kind == "ul" else f"{number}."
            pdf.set_x(pdf.l_margin + 3)
            pdf.cell(7, body, mark)
            _lines(pdf, body, _latin1(source, item))
            pdf.ln(1)
        pdf.ln(1.5)

    return bytes(pdf.output()), pdf.page


# -- DOCX --------------------------------------------------------------------

_FIXED_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def build_docx(source: Source) -> bytes:
    document = docx.Document()
    props = document.core_properties
    props.title = source.title
    props.author = source.author
    props.last_modified_by = source.author
    props.keywords = ", ".join(source.keywords)
    props.subject = source.title
    props.comments = "Sample document written for semsearch (CC0 1.0)."
    props.created = source.created.replace(tzinfo=None)
    props.modified = source.created.replace(tzinfo=None)
    props.revision = 1

    for block in source.blocks:
        if block.kind == "pagebreak":
            continue
        if block.kind in ("h1", "h2", "h3"):
            document.add_heading(block.text, level=int(block.kind[1]))
        elif block.kind == "p":
            document.add_paragraph(block.text)
        else:
            style = "List Bullet" if block.kind == "ul" else "List Number"
            for item in block.items:
                document.add_paragraph(item, style=style)

    raw = io.BytesIO()
    document.save(raw)
    return _fixed_zip(raw.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """The same zip with every entry's timestamp fixed, for reproducible bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=_FIXED_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            dst.writestr(entry, src.read(info.filename))
    return out.getvalue()


# -- main --------------------------------------------------------------------


def build(source: Source) -> str:
    suffix = source.output.suffix.lower()
    extra = ""
    if suffix == ".pdf":
        data, pages = build_pdf(source)
        if pages < 2:
            raise SystemExit(f"{source.path}: one PDF page; samples need two or more")
        extra = f", {pages} pages"
    elif suffix == ".docx":
        data = build_docx(source)
    else:
        raise SystemExit(f"{source.path}: output must end in .pdf or .docx")
    if len(data) > MAX_BYTES:
        raise SystemExit(f"{source.output}: {len(data)} bytes, over {MAX_BYTES}")
    source.output.parent.mkdir(parents=True, exist_ok=True)
    source.output.write_bytes(data)
    return f"{source.output.relative_to(SAMPLES)}: {len(data):,} bytes{extra}"


def main(argv: list[str]) -> int:
    paths = [Path(arg) for arg in argv] or sorted(SOURCES.glob("*.md"))
    if not paths:
        print(f"no sources in {SOURCES}", file=sys.stderr)
        return 1
    for path in paths:
        print(build(read_source(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
