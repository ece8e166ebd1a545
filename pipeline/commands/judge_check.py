"""`python -m pipeline judge-check`: compare up to 3 candidate judge models with people, before the run.

    python -m pipeline judge-check --raw runs/nld/raw.parquet --annotations annotations.parquet \\
        --judge meta-llama/Llama-3.3-70B-Instruct --judge Qwen/Qwen2.5-72B-Instruct --language nld
    python -m pipeline judge-check --labels labels.jsonl --judge my-model \\
        --judge-backend openai --judge-base-url http://localhost:8000/v1 --output check.json
    python -m pipeline judge-check ... --dry-run            # the estimate only: no call is made

The rows come from an Argilla pull (``--raw`` and ``--annotations``, from ``python -m pipeline argilla pull``) or
from labels saved in the app's judge check panel (``--labels``). Every judge rates every row in both orders; the
table gives per judge the parse rate, the flip rate (the preferred answer changed with the order), the agreement
with the people and Cohen's kappa, and the mean latency and tokens per row. ``--output`` writes it all as JSON
(with every row's verdict). The same workflow as the app's judge check (``pipeline.judge.check``).

``--judge-backend``, ``--judge-base-url`` and ``--judge-provider`` are given once (for every judge) or once per
``--judge``, in the same order. Credentials come from the environment only: ``HF_TOKEN`` (or the token saved by
``hf auth login``) for serverless and endpoint judges, ``OPENAI_API_KEY`` for OpenAI-compatible servers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

MODES = ("ratings", "pairwise")


def register(sub: argparse._SubParsersAction) -> None:
    from pipeline.inference import BACKEND_KINDS

    p = sub.add_parser(
        "judge-check",
        help="compare up to 3 judge models with people's preferences (agreement, kappa, flip and parse rates)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i = p.add_argument_group("rows with a people's preference (annotations, or labels)")
    i.add_argument("--raw", help="raw results (.parquet/.jsonl) from `python -m pipeline generate`")
    i.add_argument("--annotations", help="answers pulled from Argilla (`python -m pipeline argilla pull`)")
    i.add_argument("--labels", help="labels saved from the app's judge check panel (.jsonl/.parquet)")
    i.add_argument("--language", help="the run's language (ISO 639-3, e.g. nld): rows in another one are refused")
    j = p.add_argument_group("judges")
    j.add_argument("--judge", action="append", metavar="MODEL", help="a judge model id; repeat for up to 3")
    j.add_argument(
        "--judge-backend",
        action="append",
        choices=BACKEND_KINDS,
        help="where the judge runs (default: openai if --judge-base-url is given, else serverless)",
    )
    j.add_argument("--judge-base-url", action="append", help="endpoint or OpenAI-compatible base URL")
    j.add_argument("--judge-provider", action="append", help="serverless provider (default auto)")
    j.add_argument("--mode", choices=MODES, default="ratings", help="judge mode (default ratings: UltraFeedback)")
    j.add_argument("--aspect", help="UltraFeedback aspect (default overall-rating)")
    j.add_argument("--judge-max-new-tokens", type=int)
    j.add_argument("--concurrency", type=int, default=4, help="rows in flight per judge, two calls each (default 4)")
    o = p.add_argument_group("output")
    o.add_argument("--dry-run", action="store_true", help="print the estimate and exit (no call is made)")
    o.add_argument("--output", "-o", help="write the result (figures and every row's verdict) to this .json file")
    p.set_defaults(func=_run)


class _UsageError(Exception):
    pass


def _per_judge(values: list[str] | None, n: int, flag: str) -> list[str | None]:
    values = values or []
    if len(values) in (0, 1):
        return [values[0] if values else None] * n
    if len(values) != n:
        raise _UsageError(
            f"{flag} is given {len(values)} times for {n} judges: give it once (for every judge) or "
            "once per --judge, in the same order."
        )
    return list(values)


def _settings(args: argparse.Namespace):
    from pipeline import judge
    from pipeline.judge import check as judgecheck

    models = [m.strip() for m in args.judge or [] if m and m.strip()]
    if not models:
        raise _UsageError("Give a judge model to check: --judge MODEL_ID (repeat it for up to 3 judges).")
    kinds = _per_judge(args.judge_backend, len(models), "--judge-backend")
    urls = _per_judge(args.judge_base_url, len(models), "--judge-base-url")
    providers = _per_judge(args.judge_provider, len(models), "--judge-provider")
    specs = [
        {"model": m, "kind": k, "base_url": u or "", "provider": p}
        for m, k, u, p in zip(models, kinds, urls, providers)
    ]
    judges = judgecheck.judges_from(specs)
    return judgecheck.CheckSettings(
        judges=judges,
        mode=args.mode,
        aspect=args.aspect or judge.DEFAULT_ASPECT,
        max_new_tokens=args.judge_max_new_tokens,
        concurrency=args.concurrency,
    )


def _read(path: str, what: str):
    from pipeline.core import tablefiles

    try:
        return tablefiles.read_table(path)
    except tablefiles.TableFileError as exc:
        raise _UsageError(f"{what}: {exc}") from None


def _items(args: argparse.Namespace):
    """(items, source) from --labels or --raw + --annotations."""
    from pipeline.judge import labels as judge_labels

    if args.labels and (args.raw or args.annotations):
        raise _UsageError("Give either --labels, or --raw with --annotations, not both.")
    if args.labels:
        labels = judge_labels.labels_from_table(_read(args.labels, "--labels"), args.labels)
        return judge_labels.items_from_labels(labels), judge_labels.SOURCE_LABELS
    if not (args.raw and args.annotations):
        raise _UsageError(
            "Give the rows with people's preferences: --raw raw.parquet --annotations "
            "annotations.parquet (an Argilla pull), or --labels labels.jsonl (from the app)."
        )
    raw = _read(args.raw, "--raw")
    annotations = _read(args.annotations, "--annotations")
    return judge_labels.items_from_annotations(raw, annotations), judge_labels.SOURCE_ANNOTATIONS


def format_table(rows: list[dict[str, str]]) -> str:
    """The side-by-side table as aligned text columns (empty columns left out)."""
    if not rows:
        return ""
    columns = [c for c in rows[0] if any(r.get(c) for r in rows)]
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r.get(c, "").ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from pipeline.judge import labels as judge_labels

    try:
        return _main(args)
    except (_UsageError, judge_labels.JudgeCheckError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    from pipeline.core import credentials, hub
    from pipeline.judge import check as judgecheck
    from pipeline.judge import labels as judge_labels
    from pipeline.judge import report as judge_report

    if args.output and not args.output.endswith(".json"):
        raise _UsageError(f"--output {args.output}: give a .json file.")
    settings = _settings(args)
    items, source = _items(args)
    language = (args.language or "").strip()
    judge_labels.check_items(items, language, source=source)
    plan = judgecheck.plan_check(items, settings)
    print(f"Estimate: {plan.summary()}", file=sys.stderr)
    if args.dry_run:
        return 0
    token = hub.local_token()
    settings.require_sign_in(token, "set HF_TOKEN (or `hf auth login`)")
    creds = credentials.Credentials(token, credentials.api_keys_for(settings.judges, credentials.env_api_key()))
    handle = judgecheck.CheckHandle([b.model for b in settings.judges], len(items))
    report = asyncio.run(_run_with_progress(items, settings, creds, handle, language, source))
    check = report.check
    rows = [
        {**r, "note": "stopped: see below" if j.error else r["note"]}
        for r, j in zip(judge_report.score_rows(check), check.judges)
    ]
    print(format_table(rows))
    print(judge_report.summary_line(check), file=sys.stderr)
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"Wrote {out}", file=sys.stderr)
    stopped = [j for j in check.judges if j.error]
    for j in stopped:
        print(f"error: judge {j.model}: {j.error}", file=sys.stderr)
    if report.cancelled:
        print("Cancelled: the figures cover the rows judged before Ctrl-C.", file=sys.stderr)
        return 130
    return 1 if stopped else 0


async def _run_with_progress(items, settings, creds, handle, language, source):
    from pipeline.judge import check as judgecheck

    task = asyncio.ensure_future(
        judgecheck.run_check(items, settings, creds, language=language, source=source, handle=handle)
    )
    loop = asyncio.get_running_loop()
    try:  # Ctrl-C: no new calls; the calls in flight finish and the rows judged so far are reported
        loop.add_signal_handler(signal.SIGINT, _cancel, handle)
    except (NotImplementedError, RuntimeError):  # pragma: no cover - not on the main thread / Windows
        pass
    last = ""
    while not task.done():
        await asyncio.wait({task}, timeout=2.0)
        line = handle.line()
        if line != last and sys.stderr.isatty():
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
            last = line
    if last:
        print(file=sys.stderr)
    loop.remove_signal_handler(signal.SIGINT)
    return task.result()


def _cancel(handle) -> None:
    print("\nCancelling: the calls in flight finish, the rows judged so far are reported…", file=sys.stderr)
    handle.cancel()
