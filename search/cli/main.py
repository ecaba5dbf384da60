"""Entry point of ``semsearch``: parses arguments, sets up logging, shows errors.

Errors a user can cause are one line on stderr and exit code 1; a usage error
is exit code 2 (argparse's); an interrupted command exits with 130. Set
``SEMSEARCH_DEBUG=1`` to see the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from search.cli import (
    check,
    encode,
    evaluate,
    finetune,
    ingest,
    jobs,
    models,
    reindex,
    search,
    status,
    ui,
)
from search.errors import SemsearchError

Handler = Callable[[argparse.Namespace], int]
COMMAND_GROUPS = (
    ingest,
    search,
    status,
    check,
    jobs,
    ui,
    evaluate,
    models,
    reindex,
    finetune,
    encode,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="semsearch",
        description="Self-hosted semantic document search.",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="where the catalog and the embedded store live "
        "(default: SEMSEARCH_DATA_DIR or ./.semsearch)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    handler: Handler = args.handler
    try:
        return handler(args)
    except BrokenPipeError:
        # The reader went away (`semsearch jobs | head`): stop quietly, as
        # Unix tools do; stdout is pointed at devnull so the exit flush is silent.
        with contextlib.suppress(OSError, ValueError):  # no real stdout: fine
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except SemsearchError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(_describe_os_error(exc))
    except KeyboardInterrupt:
        print("semsearch: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("SEMSEARCH_DEBUG"):
            raise
        return _fail(
            f"unexpected {type(exc).__name__}: {exc} "
            "(set SEMSEARCH_DEBUG=1 to see where)"
        )


def _fail(message: str) -> int:
    print(f"semsearch: error: {message}", file=sys.stderr)
    return 1


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


def _configure_logging(verbosity: int) -> None:
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)]
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # transformers draws a progress bar for every model load; ours are fast.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if verbosity < 2:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


if __name__ == "__main__":
    sys.exit(main())
