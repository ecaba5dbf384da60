"""Helpers the command modules share: settings from arguments, the app."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from search.app import App


def open_app(args: argparse.Namespace, role: str = "cli") -> App:
    """The app for a command; imported here so that ``--help`` stays instant."""
    from search.app import App
    from search.settings import load_settings

    settings = load_settings(data_dir=getattr(args, "data_dir", None))
    return App(settings, role=role)


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
