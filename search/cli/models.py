"""``semsearch models``: the models semsearch can use and where they live."""

from __future__ import annotations

import argparse
import json
from typing import Any

from search.models import REGISTRY


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the available models",
        description="List the registered models: dimension, max length, "
        "whether they are installed and where they live.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rows = [_describe(name) for name in REGISTRY]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("MODEL", "DIM", "MAX TOKENS", "STATUS", "LOCATION")
    table = [header] + [
        (
            r["name"],
            str(r["dimension"]),
            str(r["max_seq_length"]),
            r["status"],
            r["location"],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]))
    return 0


def _describe(key: str) -> dict[str, Any]:
    model = REGISTRY[key]
    if not model.installed():
        status, location = "not installed", model.install
    elif model.is_unpacked():
        status, location = "installed", str(model.home())
    else:
        status, location = "installed (unpacked on first use)", str(model.home())
    return {
        "name": model.name,
        "hub_id": model.hub_id,
        "dimension": model.dimension,
        "max_seq_length": model.max_seq_length,
        "status": status,
        "location": location,
    }
