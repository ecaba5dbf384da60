"""``semsearch finetune``: a model of your own, trained on your pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune an embedding model on your own pairs",
        description="Fine-tune a sentence-embedding model. SOURCE is a BEIR folder "
        "(queries judged in qrels/train.tsv, with their relevant documents) or a "
        "JSON-lines file of {query, passage} pairs (optional negative) or "
        "{text1, text2, score} scored pairs. The output is a sentence-transformers "
        "folder; switch the index to it with `semsearch reindex --model DIR`.",
    )
    parser.add_argument("--train", type=Path, required=True, metavar="SOURCE")
    parser.add_argument(
        "--base", default="all-MiniLM-L6-v2", help="the model to start from"
    )
    parser.add_argument(
        "--loss",
        choices=("mnrl", "cosine"),
        default="mnrl",
        help="mnrl: ranking with in-batch negatives, for pairs (default); "
        "cosine: cosine similarity towards the score, for scored pairs",
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-5, help="peak learning rate")
    parser.add_argument(
        "--warmup", type=float, default=0.1, help="fraction of steps of warmup"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--max-seq-length", type=int, help="truncate texts to this many tokens"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        help="auto (fp32 on the CPU, bf16 autocast on a GPU), fp32 or bf16",
    )
    parser.add_argument(
        "--hard-negatives",
        action="store_true",
        help="(BEIR folders, mnrl) give each pair a negative: a document the base "
        "model ranks high for the query that is not judged relevant",
    )
    parser.add_argument("--device", help="cpu, cuda (default: the best present)")
    parser.add_argument(
        "--out", type=Path, help="output folder (default: models/<base>-<source>)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing --out folder"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from search.app import slug
    from search.finetune import LOG_FILE, TrainConfig, finetune, load_examples

    config = TrainConfig(
        loss=args.loss,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        warmup=args.warmup,
        seed=args.seed,
        max_seq_length=args.max_seq_length,
        precision=args.precision,
        device=args.device,
    )
    examples = load_examples(args.train, config.loss)
    if args.hard_negatives:
        from search.errors import InvalidInputError
        from search.finetune import with_hard_negatives

        if not args.train.is_dir() or config.loss != "mnrl":
            raise InvalidInputError(
                "--hard-negatives needs a BEIR folder and the mnrl loss"
            )
        examples = with_hard_negatives(args.train, examples, args.base)
    name = f"{slug(Path(args.base).name)}-{slug(args.train.stem) or 'tuned'}"
    out = args.out or Path("models") / name
    result = finetune(
        args.base,
        examples,
        out,
        config,
        source=str(args.train),
        overwrite=args.overwrite,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "out": str(result.out),
                    "examples": result.examples,
                    "steps": result.steps,
                    "seconds": round(result.seconds, 1),
                    "epoch_losses": result.epoch_losses,
                },
                indent=2,
            )
        )
        return 0
    losses = ", ".join(f"{x:.4f}" for x in result.epoch_losses)
    print(
        f"trained on {result.examples} examples, {result.steps} steps in "
        f"{result.seconds:.0f} s; mean loss per epoch: {losses}"
    )
    print(f"model: {result.out} (loss log: {result.out / LOG_FILE})")
    print(f"next: semsearch eval BEIR_DIR --model {result.out}")
    print(f"      semsearch reindex --model {result.out} [--gate BEIR_DIR]")
    return 0
