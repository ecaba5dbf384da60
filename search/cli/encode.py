"""``semsearch encode`` and ``semsearch similar``: the encoder on lines of text.

``encode`` turns each input line into an embedding (``.npy`` or JSON lines);
``similar`` ranks the lines of a file by meaning against a query, which is
the quickest way to try a model on text of your own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.errors import InvalidInputError
from search.models import DEFAULT_MODEL

if TYPE_CHECKING:
    from search.encoder import Encoder


def register(subparsers: Any) -> None:
    encode = subparsers.add_parser(
        "encode",
        help="encode lines of text into embeddings",
        description="Encode each line of --file (or standard input) into an "
        "embedding, written as .npy or JSON lines.",
    )
    _add_input_options(encode)
    encode.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write here (.npy or .jsonl); default: JSON lines on stdout",
    )
    encode.add_argument("--format", choices=("npy", "jsonl"), help="output format")
    encode.add_argument(
        "--no-normalize",
        action="store_true",
        help="keep raw pooled vectors (models with a Normalize module stay unit)",
    )
    encode.set_defaults(handler=run_encode)

    similar = subparsers.add_parser(
        "similar",
        help="rank the lines of a file by similarity to a query",
        description="Encode the lines of --file (or standard input) and print "
        "the ones closest in meaning to QUERY.",
    )
    similar.add_argument("query", help="the text to compare the lines with")
    _add_input_options(similar)
    similar.add_argument("-k", "--top-k", type=int, default=5, help="default: 5")
    similar.add_argument("--json", action="store_true", help="print JSON")
    similar.set_defaults(handler=run_similar)


def _add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--file", type=Path, help="input lines (default: stdin)")
    parser.add_argument(
        "-m", "--model", default=DEFAULT_MODEL, help="model name or folder"
    )
    parser.add_argument(
        "--device", default=None, help="cuda, mps or cpu (default: best)"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="default: auto",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="default: 32")


def _read_lines(file: Path | None) -> list[str]:
    if file is None:
        return sys.stdin.read().splitlines()
    try:
        return file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{file} is not UTF-8 text ({exc.reason})") from exc


def _encoder(args: argparse.Namespace) -> Encoder:
    from search.encoder import Encoder

    return Encoder(args.model, device=args.device, precision=args.precision)


def run_encode(args: argparse.Namespace) -> int:
    import numpy as np

    output_format = args.format or _format_from_suffix(args.output)
    if output_format == "npy" and args.output is None and sys.stdout.isatty():
        raise InvalidInputError("refusing to write binary .npy to a terminal; use -o")
    lines = _read_lines(args.file)
    embeddings = _encoder(args).encode(
        lines, batch_size=args.batch_size, normalize=not args.no_normalize
    )

    if output_format == "npy":
        if args.output is None:
            np.save(sys.stdout.buffer, embeddings)
        else:
            np.save(args.output, embeddings)
        return 0
    rows = (
        json.dumps({"line": i + 1, "text": text, "embedding": vector.tolist()})
        for i, (text, vector) in enumerate(zip(lines, embeddings, strict=True))
    )
    if args.output is None:
        for row in rows:
            print(row)
    else:
        with args.output.open("w", encoding="utf-8") as out:
            out.writelines(row + "\n" for row in rows)
    return 0


def _format_from_suffix(output: Path | None) -> str:
    if output is None or output.suffix in (".jsonl", ".json"):
        return "jsonl"
    if output.suffix == ".npy":
        return "npy"
    raise InvalidInputError(
        f"cannot tell the format of {output}; name it .npy or .jsonl, or pass --format"
    )


def run_similar(args: argparse.Namespace) -> int:
    from search.similarity import semantic_search

    if args.top_k < 1:
        raise InvalidInputError("--top-k must be at least 1")
    numbered = [(i + 1, line) for i, line in enumerate(_read_lines(args.file))]
    numbered = [(n, line) for n, line in numbered if line.strip()]
    if not numbered:
        raise InvalidInputError("no lines to compare with: the input is empty")

    encoder = _encoder(args)
    corpus = encoder.encode([line for _, line in numbered], batch_size=args.batch_size)
    query = encoder.encode(args.query)
    hits = semantic_search(query, corpus, top_k=args.top_k)[0]

    results = [
        {
            "line": numbered[h["corpus_id"]][0],
            "score": round(h["score"], 4),
            "text": numbered[h["corpus_id"]][1],
        }
        for h in hits
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"{r['score']:.3f}  {r['line']:>4}: {r['text']}")
    return 0
