"""``python -m pipeline filter``: keep one language of Aya (or any prompt/response dataset, or the demo data).

Examples::

    python -m pipeline filter --language Dutch --output aya-nld.parquet
    python -m pipeline filter --language nl --min-response-chars 50 --sample 500 --push you/aya-nld --private
    python -m pipeline filter --dataset you/my-prompts --prompt-col question --response-col answer \\
        --language-col lang --language sw --output sw.jsonl
    python -m pipeline filter --demo --list-languages

The token comes from ``HF_TOKEN`` or the one stored by ``hf auth login`` (CLI only). Everything that can be checked
before loading is checked first (repo name, token, write access, existing repo), and a failure prints one line
and exits non-zero, with nothing written half-way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_ERROR = 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "filter",
        help="keep one language of Aya (or another prompt/response dataset) and save or push it",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    src = p.add_argument_group("source (default: CohereForAI/aya_dataset, split train)")
    src.add_argument("--dataset", help="any Hub dataset id (owner/name)")
    src.add_argument("--split", default="train")
    src.add_argument("--config", help="dataset configuration (subset), if it has several")
    src.add_argument("--prompt-col", help="column with the prompts (default: inputs for Aya, else prompt)")
    src.add_argument("--response-col", help="column with the human responses (default: targets / response)")
    src.add_argument("--language-col", help="column with language names or codes (none: give --language)")
    src.add_argument("--demo", action="store_true", help="use the bundled demo data (no network)")
    src.add_argument(
        "--list-languages",
        action="store_true",
        help="print the language table (rows, lengths, and which language check each language gets) and exit",
    )

    flt = p.add_argument_group("filters")
    flt.add_argument("--language", "-l", help="language name or code: Dutch, nl, nld, ...")
    flt.add_argument("--annotation-type", action="append", default=[], help="keep only this type (repeatable)")
    flt.add_argument("--min-prompt-chars", type=int, default=0)
    flt.add_argument("--max-prompt-chars", type=int, default=0, help="0 = no limit")
    flt.add_argument("--min-response-chars", type=int, default=0)
    flt.add_argument("--max-response-chars", type=int, default=0, help="0 = no limit")
    flt.add_argument(
        "--dedup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="drop duplicate prompts, keeping the first (default: on)",
    )
    flt.add_argument("--sample", type=int, default=0, help="keep a random sample of at most N rows")
    flt.add_argument("--seed", type=int, default=42)

    out = p.add_argument_group("output")
    out.add_argument("--output", "-o", help="write .parquet or .jsonl (default: <source>-<code>.parquet here)")
    out.add_argument("--push", metavar="REPO_ID", help="push to this dataset repo on the Hub (owner/name)")
    out.add_argument("--private", action="store_true", help="make the pushed dataset private")
    out.add_argument("--overwrite", action="store_true", help="replace the repo's contents if it exists")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _source_spec(args: argparse.Namespace):
    from pipeline.filter import sources

    if args.demo:
        return sources.SourceSpec.demo()
    if not args.dataset or args.dataset.strip() == sources.AYA_ID:
        spec = sources.SourceSpec.aya()
        return sources.SourceSpec(
            split=args.split,
            config=args.config,
            prompt_col=args.prompt_col or spec.prompt_col,
            response_col=args.response_col or spec.response_col,
            language_col=args.language_col or spec.language_col,
        )
    return sources.SourceSpec.hub_dataset(
        args.dataset,
        args.split,
        prompt_col=args.prompt_col or "prompt",
        response_col=args.response_col or "response",
        language_col=args.language_col or "",
        language="" if args.language_col else (args.language or ""),
        config=args.config,
    )


def run(args: argparse.Namespace) -> int:
    from pipeline import workflow
    from pipeline.core import hub, tablefiles
    from pipeline.filter import filtered, sources

    if not args.list_languages and not args.language:
        return _fail("choose a language with --language (a name like Dutch or a code like nl/nld).")
    if args.output and Path(args.output).suffix.lower() not in (".parquet", ".jsonl"):
        return _fail(f"--output must end in .parquet or .jsonl, not '{Path(args.output).suffix}'.")
    token = hub.local_token()
    try:
        if args.push and not args.list_languages:  # refuse before loading anything
            args.push = workflow.preflight_push(
                args.push, token, overwrite=args.overwrite, overwrite_hint="add --overwrite"
            )
        spec = _source_spec(args)
        source = sources.load_source(spec, token)
        if source.info.note:
            print(f"note: {source.info.note}", file=sys.stderr)
        elif source.info.is_demo:
            print(f"note: using {sources.DEMO_LABEL}.", file=sys.stderr)
        if args.list_languages:
            _print_language_table(source)
            return 0
        filters = filtered.FilterSpec(
            language=args.language,
            annotation_types=tuple(args.annotation_type),
            min_prompt_chars=args.min_prompt_chars,
            max_prompt_chars=args.max_prompt_chars,
            min_response_chars=args.min_response_chars,
            max_response_chars=args.max_response_chars,
            dedup=args.dedup,
            sample=args.sample,
            seed=args.seed,
        )
        unknown = set(filters.annotation_types) - set(source.annotation_types())
        if unknown:
            have = ", ".join(source.annotation_types()) or "none"
            return _fail(f"unknown annotation type {', '.join(sorted(unknown))}; this dataset has: {have}.")
        fs = filtered.filter_source(source, filters)
        print(f"{fs.summary()}.", file=sys.stderr)
        if fs.rows == 0:
            return _fail("the filters leave 0 rows: loosen them (nothing was written).")
        output = Path(args.output) if args.output else None
        if output is None and not args.push:
            output = Path(f"{fs.source.short_name}-{fs.language_code}.parquet")
        if output is not None:
            tablefiles.write_table(fs.table, output)
            print(f"wrote {fs.rows} rows to {output}")
        if args.push:
            if fs.is_demo and not args.demo:
                return _fail("the Hub could not be reached, so only demo data was loaded: nothing was pushed.")
            url = filtered.push_filtered(fs, args.push, token, private=args.private, overwrite=args.overwrite)
            print(f"pushed {fs.rows} rows to {url}")
        return 0
    except (hub.HubError, sources.DataError, tablefiles.TableFileError) as e:
        return _fail(str(e))


def _print_language_table(source) -> None:
    from pipeline import langcheck

    table = source.language_table()
    print(f"{'language':<28} {'code':<6} {'rows':>8} {'prompt':>8} {'response':>9}  language check (measured recall)")
    for row in table.to_pylist():
        cov = langcheck.coverage(row["code"])
        recall = f" ({cov.recall:.0%})" if cov.recall is not None else ""
        print(
            f"{row['language'][:28]:<28} {row['code']:<6} {row['rows']:>8} {row['mean_prompt_chars']:>8.0f} "
            f"{row['mean_response_chars']:>9.0f}  {cov.label}{recall}"
        )
    print(f"{table.num_rows} languages, {source.table.num_rows} rows ({source.info.label})")
