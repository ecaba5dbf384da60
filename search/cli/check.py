"""``semsearch check``: do the catalog and the vector store agree; ``--repair``.

Exit code 0 when they agree (or a repair made them agree), 1 when a
disagreement was found and not mended, with one line per kind of it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from search.cli.common import open_app, print_json

if TYPE_CHECKING:
    from ingest.consistency import Report


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="compare the catalog with the vector store",
        description="Compare the catalog with the vector store point by point: "
        "missing, orphan and leftover points, access-group drift, chunk counts. "
        "--repair deletes what no catalog row knows and writes again, from the "
        "files, what the store lacks.",
    )
    parser.add_argument(
        "--repair", action="store_true", help="mend what the check finds"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ingest.consistency import check, repair

    app = open_app(args)
    try:
        found = check(app)
        report = repair(app, found) if args.repair and not found.consistent else found
    finally:
        app.close()

    if args.json:
        result = found.as_dict()
        if report is not found:
            result["after_repair"] = report.as_dict()
        print_json(result)
    else:
        _print(found, report if args.repair else None)
    return 0 if report.consistent else 1


def _print(found: Report, repaired: Report | None) -> None:
    if found.running_jobs:
        jobs = ", ".join(str(j) for j in found.running_jobs)
        print(
            f"semsearch: ingest jobs {jobs} are running: their work in progress "
            "shows up as leftovers",
            file=sys.stderr,
        )
    if found.consistent:
        print(
            f"catalog and store agree: {found.documents} documents, "
            f"{found.points} points in {found.collection}"
        )
        return
    for line in found.lines():
        print(line)
    if repaired is None:
        print("run `semsearch check --repair` to mend it")
        return
    done = ", ".join(
        f"{kind.replace('_', ' ')}: {n}" for kind, n in repaired.repaired.items()
    )
    print(f"repaired: {done or 'nothing'}")
    for problem in repaired.problems:
        print(f"not repaired: {problem}", file=sys.stderr)
    if repaired.consistent:
        print(f"catalog and store agree now: {repaired.points} points")
    else:
        for line in repaired.lines():
            print(f"still: {line}")
