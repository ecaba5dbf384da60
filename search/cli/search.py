"""``semsearch search``: the best passages for a query, with filters."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

from search.cli.common import (
    add_principal_arguments,
    open_app,
    principal_of,
    print_json,
)
from search.errors import InvalidInputError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search the index",
        description="Search the indexed documents by meaning and by words.",
    )
    parser.add_argument("query")
    parser.add_argument("-k", "--top-k", type=int, default=10, help="default: 10")
    parser.add_argument("--offset", type=int, default=0, help="skip this many hits")
    parser.add_argument(
        "--type", action="append", default=[], dest="types", help="file type, e.g. pdf"
    )
    parser.add_argument(
        "--tag", action="append", default=[], help="documents with a tag"
    )
    parser.add_argument(
        "--all-tags", action="store_true", help="documents with every --tag, not any"
    )
    parser.add_argument("--path", help="documents under this folder")
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        help="only documents of this access group (within what you may read)",
    )
    parser.add_argument("--since", type=_date, help="on or after YYYY-MM-DD")
    parser.add_argument("--until", type=_date, help="on or before YYYY-MM-DD")
    parser.add_argument(
        "--mode",
        choices=("dense", "keyword", "hybrid"),
        default=None,
        help="ranking: by meaning, by words (BM25), or both fused (default hybrid)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list of hits")
    add_principal_arguments(parser)
    parser.set_defaults(handler=run)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (YYYY-MM-DD)"
        ) from None


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from search.filters import SearchFilters
    from search.highlight import snippet
    from search.retrieval import Searcher

    path_prefix = str(Path(args.path).expanduser().absolute()) if args.path else None
    filters = SearchFilters(
        file_types=tuple(args.types),
        path_prefix=path_prefix,
        tags=tuple(args.tag),
        tags_mode="all" if args.all_tags else "any",
        since=args.since,
        until=args.until,
        groups=tuple(args.group),
    )
    if args.top_k < 1:
        raise InvalidInputError("--top-k must be at least 1")
    app = open_app(args)
    try:
        principal = principal_of(args, app.settings)
        searcher = Searcher.for_app(app)
        query, truncated = searcher.bound(args.query)
        if truncated and not args.json:
            print(
                f"note: the query was cut to {searcher.max_query_chars} characters "
                "(SEMSEARCH_MAX_QUERY_CHARS)",
                file=sys.stderr,
            )
        hits = searcher.search(
            query,
            args.top_k,
            filters,
            offset=args.offset,
            principal=principal,
            mode=args.mode,
        )
        empty_index = not hits and not (
            app.store.collection_exists(app.collection)
            and app.store.count(app.collection) > 0
        )
        stale_index = empty_index and _has_indexed_documents(app)
    finally:
        app.close()

    if args.json:
        print_json([h.as_dict() for h in hits])
        return 0
    if stale_index:
        print(
            "the documents were indexed by an older version of semsearch; "
            "run semsearch ingest on your folders again (embeddings are reused)"
        )
        return 0
    if empty_index:
        print("the index is empty; add documents with: semsearch ingest PATH...")
        return 0
    if not hits:
        print("no results" + (" (try fewer filters)" if _filtered(args) else ""))
        return 0
    for rank, hit in enumerate(hits, start=args.offset + 1):
        page = f", page {hit.page}" if hit.page else ""
        print(f"{rank:>3}. {hit.score:.3f}  {hit.title}  ({hit.path}{page})")
        print(f"     {snippet(hit.text, query, 300)}")
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return bool(
        args.types or args.tag or args.path or args.group or args.since or args.until
    )


def _has_indexed_documents(app: Any) -> bool:
    from sqlalchemy.orm import Session

    from search.access import Access
    from search.catalog import repository as repo

    # Whether the index needs rebuilding, not what anyone may read: no count shown.
    with Session(app.engine) as session:
        counts = repo.count_documents(session, Access.unrestricted())
        return counts.get("indexed", 0) > 0
