"""``python -m pipeline argilla push|pull``: send raw results to Argilla for human validation, pull the answers.

The API key comes from the ``ARGILLA_API_KEY`` environment variable only (a command-line flag would land in the
shell history); the URL from ``--api-url`` or ``ARGILLA_API_URL``. Examples::

    export ARGILLA_API_URL=https://owner-argilla.hf.space ARGILLA_API_KEY=...
    python -m pipeline argilla push --input raw.parquet --dataset dpo-dutch
    python -m pipeline argilla pull --dataset dpo-dutch --output annotations.parquet
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pipeline.core.tablefiles import read_table, write_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "argilla",
        help="send raw results to Argilla and pull the annotators' answers",
        description="Send raw pipeline results to Argilla for human validation, and pull the answers back. "
        "The API key is read from ARGILLA_API_KEY.",
    )
    actions = p.add_subparsers(dest="action", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--dataset", required=True, help="dataset name in Argilla")
        q.add_argument("--workspace", default=None, help="workspace (default: your only workspace)")
        q.add_argument("--api-url", default=None, help="Argilla URL (default: $ARGILLA_API_URL)")

    push = actions.add_parser("push", help="send raw results (.parquet or .jsonl) as a dataset to annotate")
    push.add_argument("--input", required=True, type=Path, help="raw results: .parquet or .jsonl")
    common(push)
    push.add_argument("--keep-order", action="store_true", help="show the human response first (no shuffling)")
    push.add_argument("--seed", type=int, default=0, help="seed of the per-record response order (default 0)")
    push.add_argument("--no-suggestions", action="store_true", help="do not pre-fill the judge's ratings")
    push.add_argument(
        "--annotators-per-record",
        type=int,
        default=1,
        metavar="N",
        help="answers needed before a record counts as done (default 1)",
    )
    push.add_argument("--guidelines", type=Path, default=None, help="a Markdown file with your own guidelines")
    push.add_argument("--language", default=None, help="language name for the guidelines (default: from the rows)")
    push.set_defaults(func=_push)

    pull = actions.add_parser("pull", help="read the answers and write the annotations table")
    common(pull)
    pull.add_argument("--output", required=True, type=Path, help="annotations file: .parquet or .jsonl")
    pull.set_defaults(func=_pull)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _progress(desc: str):
    from tqdm import tqdm

    # One bar of ours instead of the SDK's bar per batch (TQDM_DISABLE changes tqdm's default only; this is a
    # one-command process, so setting it here affects nothing else).
    os.environ.setdefault("TQDM_DISABLE", "1")
    bar = tqdm(desc=desc, unit="record", file=sys.stderr, disable=False)

    def report(done: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return bar, report


def _push(args: argparse.Namespace) -> int:
    from pipeline import argilla as aio

    try:
        raw = read_table(args.input)
    except (OSError, ValueError) as exc:  # TableFileError is a ValueError
        return _fail(f"cannot read {args.input}: {exc}")
    guidelines = None
    if args.guidelines is not None:
        try:
            guidelines = args.guidelines.read_text(encoding="utf-8")
        except OSError as exc:
            return _fail(f"cannot read the guidelines: {exc}")
    bar, report = _progress("Sending")
    try:
        with aio.connect(args.api_url) as conn:
            result = aio.push(
                conn,
                raw,
                args.dataset,
                args.workspace,
                keep_order=args.keep_order,
                seed=args.seed,
                suggestions=not args.no_suggestions,
                min_submitted=args.annotators_per_record,
                guidelines=guidelines,
                language=args.language,
                progress=report,
            )
    except aio.ArgillaIOError as exc:
        return _fail(str(exc))
    finally:
        bar.close()
    print(result.summary())
    print(f"Open it: {result.url}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from pipeline import argilla as aio

    if args.output.suffix.lower() not in (".parquet", ".jsonl"):
        return _fail(f"{args.output}: use a .parquet or .jsonl file")
    bar, report = _progress("Reading")
    try:
        with aio.connect(args.api_url) as conn:
            result = aio.pull(conn, args.dataset, args.workspace, progress=report)
    except aio.ArgillaIOError as exc:
        return _fail(str(exc))
    finally:
        bar.close()
    try:
        write_table(result.table, args.output)
    except (OSError, ValueError) as exc:
        return _fail(f"cannot write {args.output}: {exc}")
    print(result.summary())
    print(result.agreement_summary())
    print(f"Wrote {result.table.num_rows} annotated record(s) to {args.output}")
    return 0
