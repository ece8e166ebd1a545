"""``python -m pipeline argilla push|pull``: send raw results to Argilla for human validation, pull the answers.

The API key comes from the ``ARGILLA_API_KEY`` environment variable only (a command-line flag would land in the
shell history); the URL from ``--api-url`` or ``ARGILLA_API_URL``. Examples::

    export ARGILLA_API_URL=https://owner-argilla.hf.space ARGILLA_API_KEY=...
    python -m pipeline argilla push --input raw.parquet --dataset dpo-dutch
    python -m pipeline argilla pull --dataset dpo-dutch --output annotations.parquet
    python -m pipeline argilla create-space --name me/argilla   # an Argilla Space on the Hub, with your token
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

    space = actions.add_parser(
        "create-space",
        help="create an Argilla Space on the Hub (Argilla's template) with your token, wait until it runs",
        description="Create an Argilla Space from Argilla's official template in your namespace (or an organisation "
        "where you can write), with a generated owner password and API key (printed once, at the end), and wait "
        "until it runs. Re-running with the same name reuses the Space. The token is HF_TOKEN or your saved login.",
    )
    space.add_argument("--name", default=None, help="owner/name of the Space (default: <you>/argilla)")
    space.add_argument("--storage", action="store_true", help="mount a private storage bucket at /data (paid)")
    space.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for it to run (default 600)")
    space.add_argument("--no-wait", action="store_true", help="create it and exit without waiting")
    space.set_defaults(func=_create_space)


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


def _create_space(args: argparse.Namespace) -> int:
    from pipeline import argilla as aio
    from pipeline.argilla import space
    from pipeline.core import hub

    token = hub.local_token()
    if not token:
        return _fail("no Hugging Face token: run `hf auth login` or set HF_TOKEN (a token with write access).")
    try:
        name = args.name or space.default_space_id(hub.whoami(token).name)
    except hub.HubError as exc:
        return _fail(str(exc))
    credentials = space.new_credentials(name.split("/")[0].lower())
    if args.storage:
        print(space.STORAGE_OFFER, file=sys.stderr)
    try:
        first = space.create_space(token, name, credentials, storage=args.storage)
        print(("Reusing" if first.reused else "Created") + f" {first.space_id}: {first.page}", file=sys.stderr)
        if args.no_wait:
            final = first
        else:
            final = space.follow(
                token,
                first.space_id,
                timeout_s=args.timeout,
                on_update=lambda s: print(s.summary(), file=sys.stderr),
                reused=first.reused,
            )
    except space.SpaceError as exc:
        for line in exc.logs:
            print(f"  | {line}", file=sys.stderr)
        return _fail(exc.message)
    if first.reused:
        print(
            f"{final.space_id} already existed and was reused as it is: use the owner API key you saved when it was "
            f"created. Argilla: {final.url}"
        )
        return 0
    if final.running:
        try:
            with aio.connect(final.url, credentials.api_key) as conn:
                print(f"Connected to {conn.url} as {conn.username} ({conn.role}).", file=sys.stderr)
        except aio.ArgillaIOError as exc:
            print(f"The Space runs but Argilla did not answer yet: {exc}", file=sys.stderr)
    # Shown once: these are the Space's only copy outside its secrets. Save them now.
    print(f"Argilla URL:      {final.url}")
    print(f"Owner username:   {credentials.username}")
    print(f"Owner password:   {credentials.password}")
    print(f"Owner API key:    {credentials.api_key}")
    print(f"export ARGILLA_API_URL={final.url} ARGILLA_API_KEY=<the owner API key above>")
    return 0
