"""Helpers the command modules share: settings from arguments, the app."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.access import Access, Principal
    from search.app import App
    from search.settings import Settings


def open_app(args: argparse.Namespace, role: str = "cli") -> App:
    """The app for a command; imported here so that ``--help`` stays instant."""
    from search.app import App
    from search.settings import load_settings

    settings = load_settings(data_dir=getattr(args, "data_dir", None))
    return App(settings, role=role)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def add_principal_arguments(parser: argparse.ArgumentParser) -> None:
    """``--user`` and ``--as-group``: see and count what that user would."""
    parser.add_argument(
        "--user",
        help="act as this user (default: SEMSEARCH_LOCAL_USER, the OS user)",
    )
    parser.add_argument(
        "--as-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="act as a member of GROUP (repeat; default: SEMSEARCH_LOCAL_GROUPS)",
    )


def principal_of(args: argparse.Namespace, settings: Settings) -> Principal:
    from search.identity import cli_principal

    return cli_principal(settings, args.user, args.as_group)


def access_of(args: argparse.Namespace, settings: Settings) -> tuple[Principal, Access]:
    """The principal of ``--user``/``--as-group`` and what the settings let it read."""
    from search.access import AccessPolicy

    principal = principal_of(args, settings)
    return principal, AccessPolicy.from_settings(settings).access(principal)
