"""``semsearch status`` and ``semsearch db``: what is indexed, the schema."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.cli.common import (
    access_of,
    add_principal_arguments,
    open_app,
    print_json,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine


def register(subparsers: Any) -> None:
    status = subparsers.add_parser(
        "status",
        help="documents, chunks, model, backends, sizes",
        description="Show what is indexed and where it is kept.",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    add_principal_arguments(status)
    status.set_defaults(handler=run_status)

    db = subparsers.add_parser(
        "db", help="catalog schema migrations", description="Manage the catalog schema."
    )
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION")
    db_commands.required = True
    upgrade = db_commands.add_parser("upgrade", help="upgrade to the newest revision")
    upgrade.add_argument("revision", nargs="?", default="head")
    upgrade.set_defaults(handler=run_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="downgrade to a revision")
    downgrade.add_argument("revision", help="a revision id, or base")
    downgrade.set_defaults(handler=run_db_downgrade)
    current = db_commands.add_parser("current", help="show the current revision")
    current.set_defaults(handler=run_db_current)


def _folder_size(path: Path) -> int:
    """Bytes on disk (the store's files are sparse: their length says little)."""
    if not path.exists():
        return 0
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return sum(f.stat().st_blocks * 512 for f in files)


def run_status(args: argparse.Namespace) -> int:
    from sqlalchemy.orm import Session

    from search.catalog import repository as repo
    from search.filters import build_filter
    from search.models import find_registered

    app = open_app(args)
    s = app.settings
    try:
        principal, access = access_of(args, s)
        with Session(app.engine) as session:
            documents = repo.count_documents(session, access)
            chunks = repo.count_active_chunks(session, access)
        store_points = None
        if app.store.collection_exists(app.collection):
            store_points = app.store.count(app.collection, build_filter(None, access))
        model = app.active.model
    finally:
        app.close()

    registered = find_registered(model)
    sizes = {
        "catalog": _folder_size(s.data_dir / "catalog.sqlite3")
        if s.embedded_catalog
        else None,
        "store": _folder_size(s.store_dir) if s.embedded_store else None,
    }
    info: dict[str, Any] = {
        "user": principal.user,
        "groups": list(principal.groups),
        "sees_everything": access.everything,
        "documents": documents,
        "documents_total": sum(documents.values()),
        "chunks": chunks,
        "points": store_points,
        "model": model,
        "dimension": registered.dimension if registered else None,
        "collection": app.collection,
        "catalog": s.catalog_url_safe,
        "store": s.qdrant_url_safe or f"embedded ({s.store_dir})",
        "data_dir": str(s.data_dir.resolve()),
        "sizes_bytes": sizes,
    }
    if args.json:
        print_json(info)
        return 0
    by_status = ", ".join(f"{n} {k}" for k, n in sorted(documents.items())) or "none"
    scope = "every document" if access.everything else "what they may read"
    print(f"user       {principal.describe()}: counts of {scope}")
    print(f"documents  {info['documents_total']} ({by_status})")
    print(f"chunks     {chunks} (points in the store: {store_points or 0})")
    print(f"model      {model} (collection {app.collection})")
    print(f"catalog    {info['catalog']}")
    print(f"store      {info['store']}")
    for name, size in sizes.items():
        if size is not None:
            print(f"size       {name}: {size / 1e6:.1f} MB")
    return 0


@contextmanager
def _catalog_engine(args: argparse.Namespace) -> Iterator[Engine]:
    """An engine on the settings' catalog, without the embedded auto-upgrade."""
    from search.catalog.engine import create_catalog_engine

    engine = create_catalog_engine(open_app(args).settings.catalog_url)
    try:
        yield engine
    finally:
        engine.dispose()


def run_db_upgrade(args: argparse.Namespace) -> int:
    from search.catalog.engine import current_revision, upgrade

    with _catalog_engine(args) as engine:
        upgrade(engine, args.revision)
        print(f"catalog at revision {current_revision(engine)}")
    return 0


def run_db_downgrade(args: argparse.Namespace) -> int:
    from search.catalog.engine import current_revision, downgrade

    with _catalog_engine(args) as engine:
        downgrade(engine, args.revision)
        print(f"catalog at revision {current_revision(engine) or 'base'}")
    return 0


def run_db_current(args: argparse.Namespace) -> int:
    from search.catalog.engine import current_revision, head_revision

    with _catalog_engine(args) as engine:
        revision = current_revision(engine)
    print(f"{revision or 'base'} (newest: {head_revision()})")
    return 0
