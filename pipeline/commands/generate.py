"""`python -m pipeline generate`: the Pipeline step from the command line (same executor as the app).

    python -m pipeline generate filtered.parquet --output runs/dutch \\
        --model Qwen/Qwen2.5-72B-Instruct --judge-model meta-llama/Llama-3.3-70B-Instruct
    python -m pipeline generate filtered.parquet --output runs/dutch --backend openai \\
        --base-url http://localhost:8000/v1 --model my-model --max-rows 100
    python -m pipeline generate --config run.yaml          # the same settings in a YAML/JSON file

Results go to the output folder as they finish (``checkpoint.jsonl``); rerunning the same command resumes (rows
already ok are skipped, failed rows are retried). At the end (also after Ctrl-C) the folder holds ``raw.parquet``
(``schema.RAW_COLUMNS``), ``README.md`` (the dataset card), ``pipeline.py`` (the distilabel recipe) and
``dpo_studio.json``. ``--push owner/name`` pushes them to the Hub.

The source named in the card and ``dpo_studio.json`` is the one the filtered set records (``python -m pipeline
filter`` writes it into the file's schema metadata: the Hub dataset, or the demo data). ``--source-dataset`` and
``--license`` set it for a file made elsewhere; without either the card says the source was not recorded.

Credentials come from the environment only: ``HF_TOKEN`` (or the token saved by ``hf auth login``) for serverless
and endpoint models and for ``--push``; ``OPENAI_API_KEY`` for OpenAI-compatible servers that need a key.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

CONFIG_KEYS = (
    "input",
    "output",
    "generators",
    "model",
    "backend",
    "base_url",
    "provider",
    "judge",
    "judge_model",
    "judge_backend",
    "judge_base_url",
    "judge_provider",
    "system_prompt",
    "system_prompt_file",
    "aspect",
    "max_rows",
    "max_tokens",
    "max_new_tokens",
    "temperature",
    "top_p",
    "seed",
    "judge_max_new_tokens",
    "judge_temperature",
    "judge_mode",
    "judge_order",
    "judge_structured",
    "concurrency",
    "push",
    "public",
    "overwrite",
    "source_dataset",
    "license",
    "hub_checkpoint",
    "checkpoint_every",
    "judge_check",
    "max_wait_s",
)


def register(sub: argparse._SubParsersAction) -> None:
    from pipeline.generate.settings import DEFAULTS
    from pipeline.inference import BACKEND_KINDS

    p = sub.add_parser(
        "generate",
        help="generate second responses, judge them (UltraFeedback) and check their language",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", nargs="?", help="filtered set (.parquet or .jsonl) from `python -m pipeline filter`")
    p.add_argument("--config", help="YAML or JSON file with the same settings (flags given here win)")
    p.add_argument("--output", "-o", help="output folder (rerun with the same folder to resume)")
    g = p.add_argument_group("generator model(s)")
    g.add_argument("--model", action="append", help="generator model id; repeat for several models")
    g.add_argument(
        "--backend",
        choices=BACKEND_KINDS,
        help="where the generators run (default: openai if --base-url is given, else serverless)",
    )
    g.add_argument("--base-url", help="endpoint or OpenAI-compatible base URL (e.g. http://localhost:8000/v1)")
    g.add_argument("--provider", help="serverless provider (default auto)")
    g.add_argument("--system-prompt", help="system prompt for the generators")
    g.add_argument("--system-prompt-file", help="read the system prompt from this file")
    g.add_argument("--max-new-tokens", type=int, help=f"per response (default {DEFAULTS['max_new_tokens']})")
    g.add_argument("--temperature", type=float, help=f"default {DEFAULTS['temperature']}")
    g.add_argument("--top-p", type=float, help=f"default {DEFAULTS['top_p']}")
    g.add_argument("--seed", type=int)
    j = p.add_argument_group("judge")
    j.add_argument("--judge-model", help="judge model id (default: the first generator)")
    j.add_argument("--judge-backend", choices=BACKEND_KINDS, help="default: as generators")
    j.add_argument("--judge-base-url", help="default: the generators' base URL")
    j.add_argument("--judge-provider")
    j.add_argument("--aspect", help=f"UltraFeedback aspect (default {DEFAULTS['aspect']})")
    j.add_argument("--judge-max-new-tokens", type=int)
    j.add_argument("--judge-temperature", type=float)
    j.add_argument(
        "--judge-mode",
        choices=("ratings", "pairwise"),
        help="ratings: UltraFeedback 1-5 per answer; pairwise: A, B or tie, the human answer against each "
        f"model's (default {DEFAULTS['judge_mode']})",
    )
    j.add_argument(
        "--judge-check",
        metavar="CHECK.json",
        help="the JSON of a `judge-check` run (its --output): the figures of the checked judge that this "
        "run uses go on the dataset cards",
    )
    j.add_argument(
        "--judge-order",
        choices=("random", "both"),
        help="random: answers shown in a random order per row; both: each row judged twice, the second "
        f"time in reverse order, flips counted (default {DEFAULTS['judge_order']})",
    )
    r = p.add_argument_group("limits")
    r.add_argument("--max-rows", type=int, help="use only the first N rows of the input")
    r.add_argument("--max-tokens", type=int, help="token budget of this run (prompt + completion)")
    r.add_argument(
        "--concurrency",
        type=int,
        help=f"calls in flight at once (default {DEFAULTS['concurrency']}); "
        "fewer while a provider throttles, growing back as it allows",
    )
    r.add_argument(
        "--max-wait",
        dest="max_wait_s",
        type=float,
        metavar="SECONDS",
        help="longest total wait of one call for a provider that throttles (429); after it the run "
        f"pauses, to resume later (default {DEFAULTS['max_wait_s']:g})",
    )
    r.add_argument(
        "--no-hedge",
        action="store_true",
        help="never send backup requests for stragglers at the end of the run (default: up to one per "
        "slow call, only when slots are idle, at most max(concurrency, 2.5%% of calls))",
    )
    r.add_argument("--dry-run", action="store_true", help="print the estimate and exit")
    r.add_argument("--restart", action="store_true", help="discard the results in the output folder first")
    h = p.add_argument_group("hub")
    h.add_argument("--push", metavar="OWNER/NAME", help="push the raw dataset to the Hub at the end")
    h.add_argument(
        "--hub-checkpoint",
        metavar="OWNER/NAME",
        help="also checkpoint to this private dataset as rows finish; a rerun on another machine (or "
        "after losing the output folder) restores the finished rows from it",
    )
    h.add_argument("--checkpoint-every", type=int, help="rows between two Hub checkpoints (default 100, at least 10)")
    h.add_argument("--public", action="store_true", help="make the pushed dataset public (default private)")
    h.add_argument("--overwrite", action="store_true", help="replace the dataset if it exists")
    h.add_argument(
        "--source-dataset", help="the Hub dataset the rows come from, for the card (default: the one the input records)"
    )
    h.add_argument("--license", help="licence of the source data, for the card (default: the input's record)")
    p.set_defaults(func=_run)


class _UsageError(Exception):
    pass


def _load_config(path: str) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        data = json.loads(text)
    else:
        import yaml

        data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise _UsageError(f"{path}: the config must be a mapping of settings.")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise _UsageError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(CONFIG_KEYS)}.")
    return data


def _settings_from(args: argparse.Namespace) -> dict:
    """Config file values overridden by the flags that were given."""
    conf = _load_config(args.config) if args.config else {}
    for key in CONFIG_KEYS:
        value = getattr(args, key, None)
        if key == "model" and value:
            conf["generators"] = None
        if value not in (None, False, []):
            conf[key] = value
    return conf


def _build_settings(conf: dict):
    """RunSettings from the merged config and flags (one rule with the app: ``RunSettings.from_mapping``)."""
    from pipeline.generate.settings import RunSettings
    from pipeline.inference import InferenceError

    conf = dict(conf)
    if conf.get("system_prompt_file"):
        conf["system_prompt"] = Path(conf["system_prompt_file"]).read_text(encoding="utf-8").strip()
    if not conf.get("generators") and not conf.get("model"):
        raise _UsageError("Give a generator model: --model MODEL_ID (repeat it for several models).")
    try:
        return RunSettings.from_mapping(conf)
    except InferenceError as exc:
        raise _UsageError(exc.message) from None


def read_input(path: str):
    """The filtered set from a .parquet or .jsonl/.json file, as a table with ``schema.FILTERED_SCHEMA`` (and the
    file's schema metadata: its provenance)."""
    import pyarrow as pa

    from pipeline.core import schema, tablefiles

    p = Path(path)
    if not p.exists():
        raise _UsageError(f"{path}: no such file. Make one with `python -m pipeline filter`.")
    try:
        table = tablefiles.read_table(p)
    except tablefiles.TableFileError as exc:
        raise _UsageError(str(exc)) from None
    missing = [c for c in ("prompt", "response") if c not in table.column_names]
    if missing:
        raise _UsageError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(schema.FILTERED_COLUMNS)}."
        )
    rows = table.to_pylist()
    out = []
    for row in rows:
        prompt, response = str(row.get("prompt") or ""), str(row.get("response") or "")
        out.append(
            {
                "id": row.get("id") or schema.row_id(prompt, response),
                "prompt": prompt,
                "response": response,
                "language": str(row.get("language") or ""),
                "language_code": str(row.get("language_code") or ""),
                "annotation_type": str(row.get("annotation_type") or ""),
                "user_id": str(row.get("user_id") or ""),
            }
        )
    return pa.Table.from_pylist(out, schema=schema.FILTERED_SCHEMA.with_metadata(table.schema.metadata))


def input_provenance(rows, conf: dict):
    """The rows' provenance: what the input file records, with ``source_dataset``/``license`` from the flags or
    config winning, and the input's file name (never its folder)."""
    from pipeline.core import schema

    found = schema.provenance_of(rows) or schema.Provenance()
    changes: dict = {"file": Path(conf["input"]).name}
    if conf.get("source_dataset"):
        changes.update(dataset=conf["source_dataset"], demo=False)
    if conf.get("license"):
        changes["license"] = conf["license"]
    return dataclasses.replace(found, **changes)


def _write_outputs(handle, out: Path, meta, hub_id: str) -> Any:
    """raw.parquet (with the run's metadata and provenance in its schema), README.md, pipeline.py (its --data
    defaults to ``hub_id`` when the raw set is pushed there; else it is required: no local path in the script) and
    dpo_studio.json."""
    from pipeline.core import tablefiles
    from pipeline.generate import card, recipe
    from pipeline.generate import meta as run_meta

    raw = handle.table()
    meta = run_meta.with_results(meta, raw)
    table = run_meta.tag_raw(raw, meta)
    tablefiles.write_table(table, out / "raw.parquet")
    (out / "README.md").write_text(card.render_raw_card(meta, table), encoding="utf-8")
    (out / "pipeline.py").write_text(recipe.render_pipeline_script(meta, data=hub_id), encoding="utf-8")
    (out / "dpo_studio.json").write_text(meta.to_json(), encoding="utf-8")
    return table, meta


def _run(args: argparse.Namespace) -> int:
    try:
        return _main(args)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipeline import generate, workflow
    from pipeline.core import hub
    from pipeline.core.credentials import Credentials, api_keys_for, env_api_key
    from pipeline.generate import publish
    from pipeline.judge import check as judgecheck
    from pipeline.judge import labels as judge_labels

    conf = _settings_from(args)
    if not conf.get("input"):
        raise _UsageError("Give the filtered set: python -m pipeline generate FILTERED.parquet --output DIR ...")
    if not conf.get("output"):
        raise _UsageError("Give an output folder: --output DIR (rerun with the same folder to resume).")
    try:
        settings = _build_settings(conf)
    except generate.RunError as exc:
        raise _UsageError(str(exc)) from None
    rows = read_input(conf["input"])
    if rows.num_rows == 0:
        raise _UsageError(f"{conf['input']} has no rows: filter a language with data first.")
    out = Path(conf["output"])
    checkpoint = generate.Checkpoint(out / "checkpoint.jsonl")
    token = hub.local_token()
    backends = (*settings.generators, settings.judge)
    credentials = Credentials(token, api_keys_for(backends, env_api_key()))
    push = conf.get("push")
    hub_repo = conf.get("hub_checkpoint")
    judge_check = None
    if conf.get("judge_check"):
        try:
            judge_check = judgecheck.read_check(conf["judge_check"])
        except judge_labels.JudgeCheckError as exc:
            raise _UsageError(str(exc)) from None
    try:
        workflow.require_sign_in(settings, token, "Set HF_TOKEN (or run `hf auth login`)")
        if push and not args.dry_run:
            push = workflow.preflight_push(push, token, overwrite=bool(conf.get("overwrite")))
        if hub_repo and not token:
            raise _UsageError(f"--hub-checkpoint {hub_repo}: {hub.SIGN_IN_TO_PUSH}")
    except (generate.RunError, hub.HubError) as exc:
        raise _UsageError(str(exc)) from None

    try:
        if not args.restart:
            generate.check_checkpoint(settings, checkpoint)
        plan = generate.plan_run(rows, settings, None if args.restart else checkpoint.statuses())
        print(plan.summary(), file=sys.stderr)
        if args.dry_run:
            return 0
        out.mkdir(parents=True, exist_ok=True)
        languages = {r for r in rows.column("language").to_pylist() if r}
        codes = {r for r in rows.column("language_code").to_pylist() if r}
        source = input_provenance(rows, conf)
        started = workflow.start_generation(
            workflow.GenerationRequest(
                rows=rows,
                settings=settings,
                checkpoint=checkpoint,
                credentials=credentials,
                source=source,
                language=next(iter(languages)) if len(languages) == 1 else "",
                language_code=next(iter(codes)) if len(codes) == 1 else "",
                restart=bool(args.restart),
                hub_repo=hub_repo,
                checkpoint_every=int(conf.get("checkpoint_every") or 100),
                hedge=not args.no_hedge,
                judge_check=judge_check,
            )
        )
        handle = started.handle
        for note in started.notes:
            print(note, file=sys.stderr)
    except (generate.RunError, hub.HubError) as exc:
        raise _UsageError(str(exc)) from None

    interrupted = False
    bar = tqdm(total=plan.total, initial=plan.already_ok, unit="row", desc="generate", file=sys.stderr)
    try:
        while not handle.wait(0.25):
            _update(bar, handle.snapshot())
    except KeyboardInterrupt:
        interrupted = True
        print("\nCancelling: finished rows are kept…", file=sys.stderr)
        handle.cancel()
        handle.wait(30)
    snap = handle.snapshot()
    _update(bar, snap)
    bar.close()

    table, meta = _write_outputs(handle, out, started.meta, hub_id=push or "")
    print(snap.message, file=sys.stderr)
    for notice in snap.notices:
        print(notice, file=sys.stderr)
    if snap.judged_both:
        print(
            f"Judge flip rate: {snap.flip_rate:.0%} ({snap.flips} of {snap.judged_both} rows judged in both orders "
            "changed their preferred answer).",
            file=sys.stderr,
        )
    if handle.hub_message:
        print(handle.hub_message, file=sys.stderr)
    print(f"{table.num_rows} rows in {out / 'raw.parquet'} ({_counts(snap.counts)})", file=sys.stderr)
    if interrupted or snap.state == generate.STATE_CANCELLED:
        print("Rerun the same command to resume.", file=sys.stderr)
        return 130
    if snap.failure_groups:
        print("Failed rows by reason:", file=sys.stderr)
        for group in snap.failure_groups:
            print(f"  {group.rows} × {group.status.replace('_', ' ')}: {group.reason}", file=sys.stderr)
    if snap.state != generate.STATE_DONE:
        return 1
    if not snap.counts.get("ok"):
        print("error: no row finished ok; see the reasons above.", file=sys.stderr)
        return 1
    if push:
        try:
            url = publish.push_raw(
                table, meta, push, token, private=not conf.get("public"), overwrite=bool(conf.get("overwrite"))
            )
        except hub.HubError as exc:
            print(f"error: push failed: {exc} The results are kept in {out}.", file=sys.stderr)
            return 1
        print(f"Pushed to {url}", file=sys.stderr)
    return 0


def _counts(counts: dict) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no rows"


def _update(bar, snap) -> None:
    bar.n = snap.done
    fails = snap.failures
    bar.set_postfix_str(f"failed={fails} {snap.rows_per_s:.2f} rows/s · {snap.calls.line()}", refresh=False)
    bar.refresh()
