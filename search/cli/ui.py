"""``semsearch ui``: the Streamlit UI on ui/app.py, on localhost by default."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import ui

DEFAULT_PORT = 8501


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ui",
        help="open the search UI in a browser",
        description="Serve the Streamlit UI (search, library, status).",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default 8501")
    parser.add_argument(
        "--host",
        default="localhost",
        help="address to listen on (default localhost; 0.0.0.0 for every interface)",
    )
    parser.set_defaults(handler=run)


def oidc_configured() -> bool:
    """Whether a Streamlit secrets file holds the ``[auth]`` that st.login reads."""
    import tomllib

    for folder in (Path.cwd(), Path.home()):
        secrets = folder / ".streamlit" / "secrets.toml"
        try:
            data = tomllib.loads(secrets.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        if isinstance(data.get("auth"), dict):
            return True
    return False


def app_script() -> Path:
    return Path(ui.__file__).resolve().parent / "app.py"


def streamlit_command(args: argparse.Namespace) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_script()),
        "--server.port",
        str(args.port),
        "--server.address",
        args.host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        # A failure is a message on the page, never a traceback.
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
    ]


def run(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        print(f"semsearch: --port {args.port} is not a port number", file=sys.stderr)
        return 2
    from search.settings import load_settings

    settings = load_settings(data_dir=getattr(args, "data_dir", None))
    if settings.auth == "oidc" and not oidc_configured():
        print(
            "semsearch: SEMSEARCH_AUTH=oidc needs an [auth] section (redirect_uri, "
            "cookie_secret, client_id, client_secret, server_metadata_url) in "
            ".streamlit/secrets.toml here or in ~/.streamlit/",
            file=sys.stderr,
        )
        return 1
    environment = dict(os.environ)
    if getattr(args, "data_dir", None) is not None:
        environment["SEMSEARCH_DATA_DIR"] = str(Path(args.data_dir).resolve())
    print(
        f"semsearch UI on http://{args.host}:{args.port} (Ctrl-C stops it)",
        file=sys.stderr,
    )
    command = streamlit_command(args)
    if os.name == "posix":
        # Streamlit takes this process's place, so that a signal meant for
        # `semsearch ui` (Ctrl-C, a service manager's SIGTERM) reaches it.
        sys.stderr.flush()
        os.execve(command[0], command, environment)
    try:
        return subprocess.call(command, env=environment)
    except KeyboardInterrupt:
        return 0
