"""`python -m pipeline export`: build the DPO/ORPO dataset from raw results (and annotations), write it, push it.

Example::

    python -m pipeline export --input raw.jsonl --annotations annotations.parquet \\
        --format conversational --test-size 0.1 --output dpo.parquet --push alice/aya-nld-dpo --private

Nothing is written when the export fails (every row dropped, missing columns, mixed languages: a one-line error
and exit code 1), and a push target you cannot write to is refused before any work.

The card names the source of the prompts that the input records: the Pipeline's ``dpo_studio.json`` beside it (or
``--meta``), else the run metadata and provenance in the raw file's own schema metadata (written by ``generate``).
The output files carry the same provenance.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import export as ex
from pipeline.core.schema import MetaError, RunMeta, run_meta_of


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="build the DPO/ORPO preference dataset (prompt/chosen/rejected) and write or push it",
        description="Build the DPO/ORPO preference dataset from the Pipeline's raw results (and, optionally, the "
        "annotations pulled from Argilla): apply the rules, write Parquet/JSON Lines, optionally push to the Hub.",
    )
    io_ = p.add_argument_group("input and output")
    io_.add_argument("--input", required=True, help="raw results: .parquet or .jsonl (the Pipeline's output)")
    io_.add_argument("--annotations", help="annotations pulled from Argilla: .parquet or .jsonl (optional)")
    io_.add_argument(
        "--meta",
        help="JSON describing the run, for the card (default: the Pipeline's dpo_studio.json "
        "beside the input, or <input>.meta.json)",
    )
    io_.add_argument(
        "--output", required=True, help="out.parquet or out.jsonl (with a test split: out-train.* and out-test.*)"
    )
    io_.add_argument("--card", help="also write the dataset card (README.md) to this path")
    io_.add_argument(
        "--format",
        choices=ex.FORMATS,
        default=ex.FORMAT_STANDARD,
        help="standard (strings), conversational (messages) or recipe (full conversations); default: %(default)s",
    )
    io_.add_argument(
        "--system-message",
        action="store_true",
        help="put the system prompt as a system message (conversational and recipe formats)",
    )
    io_.add_argument("--language", help="the target language (ISO 639-3) to export when the input mixes several")

    d = ex.ExportRules()
    rules = p.add_argument_group("rules (each drop is counted)")
    rules.add_argument(
        "--source",
        choices=ex.PREFERENCE_SOURCES,
        default=d.preference_source,
        help="preference source; default: %(default)s (human answers first, the judge as fallback)",
    )
    rules.add_argument(
        "--all-pairs",
        action="store_true",
        help="with 3+ responses, every pair above the margin (default: best against worst)",
    )
    rules.add_argument(
        "--use-improved",
        action="store_true",
        help="use an annotator's improved response as chosen over the response it improves",
    )
    rules.add_argument(
        "--min-margin",
        type=float,
        default=d.min_margin,
        help="minimum rating difference (default: %(default)s = any difference)",
    )
    rules.add_argument("--keep-ties", action="store_true", help="keep ties (dropped by default)")
    rules.add_argument(
        "--keep-language-mismatch",
        action="store_true",
        help="keep pairs whose chosen response is in another language (dropped by default)",
    )
    rules.add_argument("--min-chosen-rating", type=float, default=None, help="minimum rating of the chosen response")
    rules.add_argument(
        "--keep-duplicate-prompts",
        action="store_true",
        help="keep every row of a repeated prompt (collapsed to one by default)",
    )
    rules.add_argument(
        "--keep-discarded",
        action="store_true",
        help="keep rows that more annotators discarded than answered (dropped by default)",
    )
    rules.add_argument(
        "--keep-inconsistent",
        action="store_true",
        help="keep rows whose judge preference flipped when the answers swapped places (judged in "
        "both orders; dropped by default)",
    )

    split = p.add_argument_group("split")
    split.add_argument(
        "--test-size",
        type=float,
        default=None,
        help="a fraction (0.1) or a number of prompts (50) for a test split; default: no split",
    )
    split.add_argument("--seed", type=int, default=42, help="seed of the split (default: %(default)s)")

    hub = p.add_argument_group("Hub (token: HF_TOKEN or `hf auth login`)")
    hub.add_argument("--push", metavar="REPO_ID", help="push to this dataset repo (your namespace or an org)")
    hub.add_argument("--private", action="store_true", help="make the pushed dataset private")
    hub.add_argument("--overwrite", action="store_true", help="replace the contents of an existing repo")
    p.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _load_meta(args: argparse.Namespace, raw) -> RunMeta:
    """--meta, else the Pipeline's dpo_studio.json beside the input, else <input>.meta.json, else what the raw
    table's schema metadata records, else nothing known."""
    if args.meta:
        path = Path(args.meta)
        if not path.exists():
            raise ex.ExportError(f"{path} does not exist.")
    else:
        source = Path(args.input)
        found = [
            p for p in (source.with_name("dpo_studio.json"), source.with_name(source.name + ".meta.json")) if p.exists()
        ]
        if not found:
            return run_meta_of(raw) or RunMeta()
        path = found[0]
    try:
        return RunMeta.from_json(path.read_text(encoding="utf-8"))
    except MetaError as e:
        raise ex.ExportError(f"{path}: {e}") from None


def run(args: argparse.Namespace) -> int:
    from pipeline import workflow
    from pipeline.core import hub

    output = Path(args.output)
    if output.suffix.lower() not in (".parquet", ".jsonl"):
        return _fail(f"--output {output}: use a .parquet or .jsonl file name.")
    token = None
    if args.push:  # refuse a target we cannot write to before any work
        token = hub.local_token()
        try:
            args.push = workflow.preflight_push(
                args.push, token, overwrite=args.overwrite, overwrite_hint="pass --overwrite"
            )
        except hub.HubError as e:
            return _fail(str(e))
    test_size: float | int | None = args.test_size
    if test_size is not None and test_size >= 1 and float(test_size).is_integer():
        test_size = int(test_size)
    try:
        rules = ex.ExportRules(
            preference_source=args.source,
            pairing=ex.PAIRING_ALL if args.all_pairs else ex.PAIRING_BEST_WORST,
            use_improved_response=args.use_improved,
            min_margin=args.min_margin,
            keep_ties=args.keep_ties,
            drop_language_mismatch=not args.keep_language_mismatch,
            min_chosen_rating=args.min_chosen_rating,
            dedupe_prompts=not args.keep_duplicate_prompts,
            drop_discarded=not args.keep_discarded,
            drop_inconsistent=not args.keep_inconsistent,
        )
        raw = ex.read_table(args.input)
        meta = _load_meta(args, raw)
        annotations = ex.read_table(args.annotations) if args.annotations else None
        if annotations is None:
            raw, annotations = ex.split_annotation_columns(raw)
        result = ex.build_export(
            raw,
            annotations,
            rules,
            args.format,
            include_system=args.system_message,
            test_size=test_size,
            seed=args.seed,
            target_language=args.language,
            source=meta.source if meta.source.known else None,
        )
    except ex.ExportError as e:
        return _fail(str(e))

    width = max(len(label) for label, _ in ex.counts_table(result.counts))
    for label, value in ex.counts_table(result.counts, all_rules=False):
        print(f"{label:<{width}}  {value}")
    for note in result.notes:
        print(f"note: {note}")
    if result.agreement.get("rows"):
        ag = result.agreement
        kappa = "n/a" if ag["kappa"] is None else f"{ag['kappa']:.2f}"
        print(f"judge vs annotators: agree on {ag['agree']}/{ag['rows']} ({ag['share']:.0%}), kappa {kappa}")

    paths = ex.write_export(result, output)
    for name, path in paths.items():
        print(f"wrote {name}: {path} ({result.splits[name].num_rows} rows)")
    if args.card:
        card_path = Path(args.card)
        card_path.parent.mkdir(parents=True, exist_ok=True)
        card_path.write_text(ex.render_export_card(result, meta, args.push or ""), encoding="utf-8")
        print(f"wrote the card: {card_path}")
    if args.push:
        try:
            url = ex.push_export(result, args.push, token, private=args.private, meta=meta, overwrite=args.overwrite)
        except hub.HubError as e:
            return _fail(f"{e} (the files above are written)")
        print(f"pushed: {url}")
    return 0
