"""An unrelated-domain test collection, in BEIR format, from stdlib docstrings.

A model fine-tuned on SciFact's scientific abstracts can get better there and
worse everywhere else: it forgets. This script builds a retrieval collection
of another kind of text to check for that, from text that ships with Python
itself, so nothing is downloaded: the docstrings of the standard library.

Each public function, class and method of a fixed list of modules whose
docstring (inspect.getdoc) has a short summary and a longer body gives one
document and one query. The document is the body, after the first blank
line; the query is the summary, and its one relevant document is its own
body. Every kept body is in the corpus, so all the others are distractors;
at most ``--queries`` of them are sampled as queries.

Kept are queries of 4-40 words (counted after the name is taken out) with
bodies of at least 25 words. A first paragraph that is a call signature
("deque([iterable[, maxlen]]) --> deque object", as C modules, named tuples
and dataclasses write them) is dropped and the next one is the summary.
Identical bodies, summaries or queries keep the first by qualified name
(re-exports: datetime.date is also sqlite3.Date). Docstrings inherited from
a base class, and built-ins re-exported under another name (uuid.bytes_,
typing.Text), are left out.

- Titles are empty: a title would be the object's name, and the query would
  find its document by string match.
- The object's own name is taken out of its query for the same reason:
  bodies often repeat the name ("copytree() ..."), which would make the task
  keyword lookup rather than matching meaning.

The output is deterministic for one Python version: modules, members and
samples are all taken in sorted order, and the sample uses random.Random(0).

    .venv/bin/python bench/unrelated.py [--queries 500] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import platform
import random
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

# Run as a script, this file's folder comes first on sys.path, where
# bench/ingest.py would shadow the ingest package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results" / "unrelated-stdlib"
MODULES = sorted(
    {
        "abc", "argparse", "array", "ast", "asyncio", "base64", "bisect", "bz2",
        "calendar", "codecs", "collections", "colorsys", "configparser",
        "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal",
        "difflib", "dis", "doctest", "email", "enum", "fnmatch", "fractions",
        "functools", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac",
        "html", "html.parser", "http.client", "inspect", "io", "ipaddress",
        "itertools", "json", "locale", "logging", "lzma", "math", "mmap",
        "numbers", "operator", "os", "os.path", "pathlib", "pickle", "platform",
        "pprint", "queue", "random", "re", "secrets", "select", "shelve",
        "shutil", "signal", "socket", "sqlite3", "statistics", "string",
        "struct", "subprocess", "sysconfig", "tarfile", "tempfile", "textwrap",
        "threading", "time", "timeit", "tokenize", "trace", "typing",
        "unittest", "urllib.parse", "uuid", "wave", "weakref",
        "xml.etree.ElementTree", "zipfile", "zlib",
    }
)  # fmt: skip
SUMMARY_WORDS = (4, 40)
MIN_BODY_WORDS = 25
# A first paragraph that starts with a call signature or gives one as
# "arguments -> result", as C modules, named tuples and dataclasses write it:
# "name(arg, ...)", "D.count(value) -- ...", "string, format -> datetime".
SIGNATURE = re.compile(r"^[\w.]+\(|-+>")


@dataclass(frozen=True)
class Item:
    """One kept docstring: its object's name, summary (the query) and body."""

    name: str
    summary: str
    query: str
    body: str


def words(text: str) -> int:
    return len(text.split())


def collapse(text: str) -> str:
    return " ".join(text.split())


def importable(names: list[str]) -> dict[str, ModuleType]:
    """The modules of ``names`` that import here, by the name asked for (the
    module object of "os.path" is called posixpath)."""
    modules = {}
    for name in names:
        try:
            modules[name] = importlib.import_module(name)
        except ImportError:
            continue
    return modules


def public_names(module: ModuleType) -> list[str]:
    """The module's ``__all__`` if it has one, else its names without ``_``."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return sorted({n for n in names if hasattr(module, n)})


def own_doc(obj: Any) -> str | None:
    """``inspect.getdoc`` of an object's own docstring, not one it inherits."""
    if not isinstance(getattr(obj, "__doc__", None), str):
        return None
    return inspect.getdoc(obj)


def members(name: str, module: ModuleType) -> Iterator[tuple[str, str | None]]:
    """(qualified name, docstring) of the module's public functions, classes
    and the methods that those classes define themselves. Built-in types and
    functions that a module re-exports (uuid.bytes_, typing.Text) are left out."""
    for attribute in public_names(module):
        obj = getattr(module, attribute)
        qualified = f"{name}.{attribute}"
        if getattr(obj, "__module__", None) == "builtins":
            continue
        if inspect.isclass(obj):
            yield qualified, own_doc(obj)
            for method_name, method in sorted(vars(obj).items()):
                if not method_name.startswith("_") and inspect.isroutine(method):
                    yield f"{qualified}.{method_name}", own_doc(method)
        elif inspect.isroutine(obj):
            yield qualified, own_doc(obj)


def split_doc(doc: str) -> tuple[str, str]:
    """Summary (first paragraph, whitespace collapsed) and body of a docstring.
    Leading paragraphs that are call signatures are dropped."""
    paragraphs = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)
    if SIGNATURE.search(collapse(paragraphs[0])):
        if len(paragraphs) == 1:
            return "", ""
        return split_doc(paragraphs[1])
    summary = collapse(paragraphs[0])
    body = paragraphs[1].strip() if len(paragraphs) > 1 else ""
    return summary, body


def name_forms(qualified: str, module: str) -> list[str]:
    """The names to take out of a query, longest first: the whole dotted name,
    every dotted tail of it, and each part of the object's own name (the
    module's parts alone are left: "path" or "parse" are ordinary words)."""
    own = qualified[len(module) + 1 :].split(".")
    parts = qualified.split(".")
    forms = {".".join(parts[i:]) for i in range(len(parts))} | set(own)
    forms -= {p for p in module.split(".") if p not in own}
    return sorted(forms, key=lambda f: (-len(f), f))


def strip_names(summary: str, forms: list[str]) -> str:
    """The summary with ``forms`` removed where they stand as words, with any
    dotted prefix ("threading.Barrier") and a trailing "()"; whitespace is
    collapsed and punctuation left hanging at the start is dropped."""
    for form in forms:
        pattern = rf"(?<![\w.])(?:\w+\.)*{re.escape(form)}(?:\(\))?(?!\w)"
        summary = re.sub(pattern, " ", summary)
    summary = re.sub(r"\s+([,.;:])", r"\1", collapse(summary))
    return summary.lstrip(" ,.;:")


def candidates(modules: dict[str, ModuleType]) -> list[tuple[str, str, str]]:
    """(module name, qualified name, docstring) of every member, by name."""
    found = {}
    for name, module in modules.items():
        for qualified, doc in members(name, module):
            if doc and qualified not in found:
                found[qualified] = (name, qualified, doc)
    return [found[q] for q in sorted(found)]


def keep(modules: dict[str, ModuleType]) -> list[Item]:
    """The docstrings that pass the length filters, the first of each body,
    summary and query by qualified name."""
    items: list[Item] = []
    seen_bodies: set[str] = set()
    seen_summaries: set[str] = set()
    for module, qualified, doc in candidates(modules):
        summary, body = split_doc(doc)
        query = strip_names(summary, name_forms(qualified, module))
        lo, hi = SUMMARY_WORDS
        if not lo <= words(query) <= hi or words(body) < MIN_BODY_WORDS:
            continue
        if body in seen_bodies or summary in seen_summaries or query in seen_summaries:
            continue
        seen_bodies.add(body)
        seen_summaries.update((summary, query))
        items.append(Item(qualified, summary, query, body))
    return items


def write_jsonl(path: Path, records: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_beir(out: Path, items: list[Item], queries: list[Item]) -> None:
    """corpus.jsonl (every item), queries.jsonl and qrels/test.tsv (the sample)."""
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    write_jsonl(
        out / "corpus.jsonl",
        [{"_id": i.name, "title": "", "text": i.body} for i in items],
    )
    write_jsonl(
        out / "queries.jsonl",
        [{"_id": f"q-{q.name}", "text": q.query} for q in queries],
    )
    lines = ["query-id\tcorpus-id\tscore"] + [
        f"q-{q.name}\t{q.name}\t1" for q in queries
    ]
    (out / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_source(
    out: Path, modules: dict[str, ModuleType], items: list[Item], queries: int
) -> None:
    names = ", ".join(modules)
    lo, hi = SUMMARY_WORDS
    version = f"{platform.python_implementation()} {platform.python_version()}"
    text = f"""# Unrelated-domain collection: Python standard library docstrings

Written by bench/unrelated.py, to check that a model fine-tuned on SciFact
has not got worse on other text. BEIR format: corpus.jsonl, queries.jsonl,
qrels/test.tsv.

- Source: the docstrings of the {version} standard library, under the
  Python Software Foundation License. Nothing was downloaded.
- Each kept public function, class or method gives a document (the
  docstring's body, after its first paragraph; title empty) and a query (the
  first paragraph with the object's own name taken out), relevant to each
  other (score 1). Every kept body is in the corpus; the queries are a
  random.Random(0) sample.
- Kept: queries of {lo}-{hi} words, bodies of at least {MIN_BODY_WORDS} words,
  the first of identical bodies, summaries or queries by qualified name;
  leading signature paragraphs dropped.
- Counts: {len(items)} documents, {queries} queries, {queries} qrels.
- Modules ({len(modules)}): {names}.
"""
    (out / "SOURCE.md").write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    start = time.perf_counter()
    modules = importable(MODULES)
    items = keep(modules)
    sample = random.Random(0).sample(items, min(args.queries, len(items)))
    queries = sorted(sample, key=lambda i: i.name)
    write_beir(args.out, items, queries)
    write_source(args.out, modules, items, len(queries))
    print(
        f"{len(items)} documents, {len(queries)} queries from {len(modules)} "
        f"modules in {time.perf_counter() - start:.1f} s: {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
