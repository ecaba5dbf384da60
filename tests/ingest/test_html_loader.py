"""HTML: main content only, blocks, whitespace, title and meta tags."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_samples import assert_file_facts, joined_text

from ingest.documents import LoadError
from ingest.loaders.html import load_html

PAGE = """<!DOCTYPE html>
<html>
<head>
  <title>  The   Page Title </title>
  <meta name="Author" content="Grace Hopper">
  <meta name="keywords" content="compilers, navy; history">
  <style>body { color: red }</style>
  <script>var secret = "not text";</script>
</head>
<body>
  <header>Site header</header>
  <nav><a href="/">Home</a></nav>
  <main>
    <h1>Main   heading</h1>
    <p>First    paragraph
       spread over lines, with <b>bold</b> and <a href="#">a link</a>.</p>
    <!-- a comment -->
    <div>Loose text <p>inner paragraph</p> after it</div>
    <ul><li>one</li><li>two<br>lines</li></ul>
    <table><tr><th>Name</th><th>Age</th></tr><tr><td>Ann</td><td>41</td></tr></table>
    <pre>code  keeps
    its spacing</pre>
    <aside>Related links</aside>
    <noscript>Enable JavaScript</noscript>
  </main>
  <footer>Copyright</footer>
</body>
</html>
"""

EXPECTED = "\n\n".join(
    [
        "Main heading",
        "First paragraph spread over lines, with bold and a link.",
        "Loose text",
        "inner paragraph",
        "after it",
        "one",
        "two lines",
        "Name Age",
        "Ann 41",
        "code  keeps\n    its spacing",
    ]
)


def write(tmp_path: Path, text: str, name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_main_content_blocks_and_metadata(tmp_path: Path) -> None:
    path = write(tmp_path, PAGE)
    document = load_html(path)
    assert document.file_type == "html"
    assert document.title == "The Page Title"
    assert document.author == "Grace Hopper"
    assert document.tags == ["compilers", "navy", "history"]
    assert document.date is None
    assert joined_text(document) == EXPECTED
    assert_file_facts(document, path)


def test_article_when_there_is_no_main(tmp_path: Path) -> None:
    page = "<body><p>Outside</p><article><p>Inside</p></article></body>"
    assert joined_text(load_html(write(tmp_path, page))) == "Inside"


def test_body_without_main_or_article(tmp_path: Path) -> None:
    page = "<html><body><footer>f</footer><p>Only body</p></body></html>"
    assert joined_text(load_html(write(tmp_path, page))) == "Only body"


def test_fragment_without_body(tmp_path: Path) -> None:
    page = "<title>T</title><p>Fragment one</p>two"
    document = load_html(write(tmp_path, page))
    assert joined_text(document) == "Fragment one\n\ntwo"
    assert document.title == "T"


def test_title_falls_back_to_h1_then_stem(tmp_path: Path) -> None:
    document = load_html(write(tmp_path, "<h1>Big <i>Title</i></h1><p>x</p>"))
    assert document.title == "Big Title"
    document = load_html(write(tmp_path, "<p>untitled</p>", "plain-page.htm"))
    assert document.title == "plain-page"


def test_meta_charset_is_honoured(tmp_path: Path) -> None:
    page = '<meta charset="iso-8859-1"><p>Café</p>'
    path = tmp_path / "latin.html"
    path.write_bytes(page.encode("latin-1"))
    assert joined_text(load_html(path)) == "Café"


def test_markup_that_looks_like_a_url_is_still_text(tmp_path: Path) -> None:
    # BeautifulSoup warns that such markup "looks like a URL"; it is not an error.
    path = write(tmp_path, "https://example.org/some/page")
    assert joined_text(load_html(path)) == "https://example.org/some/page"


def test_page_without_text(tmp_path: Path) -> None:
    path = write(tmp_path, "<html><body><script>x()</script><nav>n</nav></body></html>")
    with pytest.raises(LoadError, match="no text in HTML"):
        load_html(path)


def test_binary_and_blank_files(tmp_path: Path) -> None:
    path = tmp_path / "binary.html"
    path.write_bytes(b"<html>\x00\x00\x01")
    with pytest.raises(LoadError, match=r"^binary file$"):
        load_html(path)
    with pytest.raises(LoadError, match=r"^empty file$"):
        load_html(write(tmp_path, "  \n ", "blank.html"))
