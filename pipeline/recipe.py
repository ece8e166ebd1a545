"""What travels with a raw dataset: its metadata (``raw_meta``), its card, and a ``pipeline.py`` that reproduces
the run with distilabel's own ``Pipeline`` (so it can scale out on distilabel's Ray runner), plus the push.

The generated script mirrors the data-is-better-together recipe: ``LoadDataFromDicts`` → one ``TextGeneration`` per
generator model → ``GroupColumns`` (the human response joins the group first, straight from the loader) →
``UltraFeedback`` → a langid language check. LLMs: distilabel's ``OpenAILLM`` for OpenAI-compatible servers and for
serverless models through the HF router's OpenAI-compatible API, and ``InferenceEndpointsLLM(base_url=...)`` for
dedicated endpoints (``InferenceEndpointsLLM(model_id=...)`` is broken with current huggingface_hub, and
``base_url`` alone sends the model name "dummy", which only endpoints ignore). Keys are read from the environment
when the script runs; no token is ever written into it.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

import pyarrow as pa

from pipeline import results, schema

ROUTER_URL = "https://router.huggingface.co/v1"
AYA_DATASET = "CohereForAI/aya_dataset"
DEFAULT_SOURCE = {"dataset": AYA_DATASET, "split": "train", "license": "apache-2.0"}
DISTILABEL_VERSION = "1.5.3"


# --------------------------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------------------------
def build_raw_meta(settings: Any, raw: pa.Table, source: dict | None = None, language: str = "",
                   language_code: str = "") -> dict:
    """The ``session.raw_meta`` dict for the Argilla and Export tabs and for cards (JSON-able, no token).

    ``settings`` is a ``pipeline.generate.RunSettings``; ``source`` describes the filtered set (``dataset``,
    ``split``, ``license``, optionally ``revision``/``rows``); ``language``/``language_code`` its language.
    """
    d = settings.describe()
    source = {**DEFAULT_SOURCE, **(source or {})}
    codes = set(raw.column("target_language").to_pylist()) if raw is not None and raw.num_rows else set()
    language_code = language_code or (next(iter(codes)) if len(codes) == 1 else "")
    return {
        "fingerprint": settings.fingerprint(),
        "models": [g["model"] for g in d["generators"]],
        "generators": d["generators"],
        "system_prompt": d["system_prompt"],
        "judge": d["judge"],
        "judge_model": d["judge"]["model"],
        "aspect": d["aspect"],
        "settings": {k: d[k] for k in ("generation", "judge_generation", "concurrency", "max_rows", "max_tokens")},
        "source": source,
        "license": source.get("license") or "",
        "source_dataset": source.get("dataset") or "",
        "language": language,
        "language_name": language,
        "language_code": language_code,
        "rows": raw.num_rows if raw is not None else 0,
        "counts": results.counts_by_status(raw),
        "created_with": "DPO Studio",
        "created_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
    }


def hub_language(code: str) -> str | None:
    """The Hub card language tag for an Aya ISO 639-3 code (e.g. ``nld`` → ``nl``), or None."""
    if not code:
        return None
    try:
        import langcodes

        return langcodes.standardize_tag(code)
    except Exception:  # noqa: BLE001 - an unknown code just leaves the card without a language tag
        return None


def default_repo_name(language: str, language_code: str = "", kind: str = "raw") -> str:
    """A default dataset name from the language, e.g. ``aya-dutch-dpo-raw``."""
    base = (language or language_code or "language").lower()
    slug = "".join(ch if ch.isalnum() else "-" for ch in base).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"aya-{slug or 'language'}-dpo-{kind}"


# --------------------------------------------------------------------------------------------------------------
# Card
# --------------------------------------------------------------------------------------------------------------
def _fence(text: str) -> str:
    """``text`` in a fenced code block that its own backticks cannot close."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _code(text: str) -> str:
    text = str(text).replace("`", "'").replace("\n", " ")
    return f"`{text}`"


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def _markdown_table(df) -> str:
    if df is None or len(df) == 0:
        return ""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = ["" if v is None or (isinstance(v, float) and v != v) else str(v).replace("|", "\\|") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def card_metadata(meta: dict) -> dict:
    lang = hub_language(meta.get("language_code", ""))
    return {
        "license": meta.get("license") or None,
        "language": [lang] if lang else None,
        "pretty_name": f"{meta.get('language') or meta.get('language_code') or 'Aya'} DPO raw generations",
        "size_categories": [_size_category(int(meta.get("rows") or 0))],
        "task_categories": ["text-generation"],
        "tags": ["dpo", "orpo", "preference", "ultrafeedback", "synthetic", "distilabel", "dpo-studio"],
    }


def render_raw_body(meta: dict, raw: pa.Table | None = None) -> str:
    """The markdown body of the raw dataset's card (see :func:`render_raw_card`)."""
    src = meta.get("source") or {}
    counts = meta.get("counts") or {}
    settings = meta.get("settings") or {}
    gen = settings.get("generation") or {}
    jgen = settings.get("judge_generation") or {}
    lang = meta.get("language") or meta.get("language_code") or "your language"
    models = meta.get("models") or []
    judge = meta.get("judge") or {}
    lines = [
        f"# {lang}: prompts, human and model responses, rated by an LLM judge",
        "",
        f"Raw step of a DPO/ORPO preference dataset for **{lang}**, built with DPO Studio following the "
        "data-is-better-together recipe. Each row holds a human-written prompt and answer from "
        f"{_code(src.get('dataset', AYA_DATASET))}, a second answer from "
        + ("each of the models below" if len(models) > 1 else "the model below")
        + f", an UltraFeedback rating of every answer (aspect {_code(meta.get('aspect', ''))}) by an LLM judge, "
        "and the detected language of every answer. It is meant to be validated by people (e.g. in Argilla) "
        "before being turned into `prompt`/`chosen`/`rejected` pairs.",
        "",
        "## How it was made",
        "",
        "- Generator model(s): " + ", ".join(_code(m) for m in models),
        f"- Judge: {_code(judge.get('model', ''))} with distilabel's `UltraFeedback` prompt, aspect "
        f"{_code(meta.get('aspect', ''))}; the texts are shown to the judge in the order of `response_sources` "
        "(the human answer first; the prompt does not say which text is human).",
        f"- Generation: max new tokens {gen.get('max_new_tokens')}, temperature {gen.get('temperature')}, "
        f"top-p {gen.get('top_p')}, seed {gen.get('seed')}; judge: max new tokens {jgen.get('max_new_tokens')}, "
        f"temperature {jgen.get('temperature')}.",
        "- Language check: `langid` on every answer; `language_match` is empty where the detector does not "
        "support the language.",
        "- System prompt:" if meta.get("system_prompt") else "- System prompt: none.",
    ]
    if meta.get("system_prompt"):
        lines += ["", _fence(meta["system_prompt"]), ""]
    lines += [
        "",
        "`pipeline.py` in this repository reproduces the run with distilabel's own `Pipeline` "
        f"(distilabel {DISTILABEL_VERSION}); `python pipeline.py --help` says how, and `--ray` runs it on a Ray "
        "cluster.",
        "",
        "## Rows by status",
        "",
        "| status | rows | meaning |",
        "|---|---|---|",
        f"| ok | {counts.get('ok', 0)} | generated and rated |",
        f"| generation_failed | {counts.get('generation_failed', 0)} | a model gave no answer (reason in `error`) |",
        f"| judge_failed | {counts.get('judge_failed', 0)} | the judge call failed (reason in `error`) |",
        f"| judge_unparseable | {counts.get('judge_unparseable', 0)} | the judge's reply had no readable ratings "
        "(raw reply in `error`) |",
        "",
    ]
    if raw is not None and raw.num_rows:
        board = results.leaderboard(raw)
        lines += ["## Leaderboard", "", _markdown_table(board), ""]
    lines += [
        "## Columns",
        "",
        "`id` (stable id of the prompt + human answer), `prompt`, `system_prompt`, `target_language` (ISO 639-3), "
        "`responses` (index 0 is the human answer), `response_sources` (`human` or the model id), `ratings` "
        "(1-5), `rationales`, `detected_languages`, `language_confidences`, `language_match`, `judge_model`, "
        "`aspect`, `status`, `error`.",
        "",
        "## Source and licence",
        "",
        f"Prompts and human answers: {_code(src.get('dataset', AYA_DATASET))} (split {_code(src.get('split', 'train'))}"
        + (f", revision {_code(src['revision'])}" if src.get("revision") else "")
        + f"), licence {_code(meta.get('license') or 'see source')}. Model answers and ratings are subject to the "
        "terms of the models that wrote them.",
    ]
    return "\n".join(lines)


def render_raw_card(meta: dict, raw: pa.Table | None = None) -> str:
    """The raw dataset's card (YAML metadata + markdown) via ``pipeline.hub.render_card``."""
    from pipeline import hub

    return hub.render_card(card_metadata(meta), render_raw_body(meta, raw))


# --------------------------------------------------------------------------------------------------------------
# pipeline.py
# --------------------------------------------------------------------------------------------------------------
_SCRIPT = '''\
"""Reproduce a DPO Studio generation run with distilabel's own Pipeline (and scale it out with Ray).

Made by DPO Studio on {date} for {language}. For every prompt: one answer per generator model, the human answer
and the model answers grouped (human first), an UltraFeedback rating of each by the judge, and a langid check of
each answer's language. Mirrors the data-is-better-together "DPO/ORPO dataset for a new language" recipe.

    pip install "distilabel[openai,hf-inference-endpoints]=={distilabel}" langid
    export HF_TOKEN=hf_...            # for serverless/endpoint models and --push (never put it in this file)
    export OPENAI_API_KEY=...         # only if your OpenAI-compatible server needs a key
    python pipeline.py --limit 10     # try a few rows first
    python pipeline.py --output generated.jsonl [--push your-name/{repo_name}] [--ray]

--data takes a Hub dataset id or a local .parquet/.jsonl file with either a `responses` column (a DPO Studio raw
dataset: index 0 is the human answer) or `prompt` + `response` columns (a DPO Studio filtered set).
"""

import argparse
import os
import sys

from distilabel.pipeline import Pipeline
from distilabel.steps import GroupColumns, LoadDataFromDicts, StepInput, step
from distilabel.steps.tasks import TextGeneration, UltraFeedback

DATA = {data!r}
SYSTEM_PROMPT = {system_prompt!r}
GENERATORS = {generators}
JUDGE = {judge}
ASPECT = {aspect!r}
GENERATION_KWARGS = {generation_kwargs}
JUDGE_KWARGS = {judge_kwargs}
TARGET_LANGUAGE = {target!r}  # ISO 639-1, as langid reports it
HF_ROUTER_URL = {router_url!r}


def make_llm(backend, generation_kwargs):
    """distilabel LLM for one backend; keys come from the environment."""
    from distilabel.models import InferenceEndpointsLLM, OpenAILLM

    kwargs = dict(generation_kwargs)
    seed = kwargs.pop("seed", None)
    if backend["kind"] == "endpoint":  # a dedicated Inference Endpoint (TGI): the URL picks the model
        if seed is not None:
            kwargs["seed"] = seed
        if not os.environ.get("HF_TOKEN"):
            print("HF_TOKEN is not set: calling the endpoint without a token.", file=sys.stderr)
        return InferenceEndpointsLLM(
            base_url=backend["base_url"],
            model_display_name=backend["model"] or None,
            api_key=os.environ.get("HF_TOKEN") or "none",
            generation_kwargs=kwargs,
        )
    if seed is not None:
        kwargs["extra_body"] = {{"seed": seed}}
    if backend["kind"] == "serverless":  # HF Inference Providers through the router's OpenAI-compatible API
        provider = backend.get("provider") or "auto"
        model = backend["model"] if provider == "auto" else backend["model"] + ":" + provider
        token = os.environ.get("HF_TOKEN")
        if not token:
            raise SystemExit("Set HF_TOKEN to use serverless models (https://huggingface.co/settings/tokens).")
        return OpenAILLM(model=model, base_url=HF_ROUTER_URL, api_key=token, generation_kwargs=kwargs)
    return OpenAILLM(  # any OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp, ...)
        model=backend["model"],
        base_url=backend["base_url"],
        api_key=os.environ.get("OPENAI_API_KEY") or "none",
        generation_kwargs=kwargs,
    )


def load_rows(data, limit=None):
    """Prompts and human answers from a Hub dataset id or a local .parquet/.jsonl/.json file."""
    import datasets

    if os.path.exists(data):
        kind = "parquet" if data.endswith(".parquet") else "json"
        ds = datasets.load_dataset(kind, data_files=data, split="train")
    else:
        ds = datasets.load_dataset(data, split="train", token=os.environ.get("HF_TOKEN"))
    if limit:
        ds = ds.select(range(min(limit, len(ds))))
    rows = []
    for row in ds:
        human = row["responses"][0] if "responses" in row else row["response"]
        rows.append(
            {{
                "id": row.get("id", ""),
                "instruction": row["prompt"],
                "generation": human,
                "model_name": "human",
            }}
        )
    return rows


@step(inputs=["generations"], outputs=["detected_languages", "language_match"])
def DetectLanguages(inputs: StepInput):
    """langid's language of every answer, and whether it is the target language."""
    import langid

    for row in inputs:
        found = [langid.classify(text)[0] if text else None for text in row["generations"]]
        row["detected_languages"] = found
        row["language_match"] = [None if code is None else code == TARGET_LANGUAGE for code in found]
    yield inputs


def build_pipeline(rows, batch_size=10):
    with Pipeline(name={pipeline_name!r}) as pipeline:
        load = LoadDataFromDicts(data=rows, batch_size=batch_size)
        generate = [
            TextGeneration(
                name=f"generate_{{i}}",
                llm=make_llm(backend, GENERATION_KWARGS),
                system_prompt=SYSTEM_PROMPT or None,
                input_batch_size=batch_size,
            )
            for i, backend in enumerate(GENERATORS)
        ]
        group = GroupColumns(
            columns=["generation", "model_name"],
            output_columns=["generations", "generation_models"],
            input_batch_size=batch_size,
        )
        judge = UltraFeedback(llm=make_llm(JUDGE, JUDGE_KWARGS), aspect=ASPECT, input_batch_size=batch_size)
        languages = DetectLanguages(input_batch_size=batch_size)
        load >> group  # the human answer joins the group first...
        load >> generate
        generate >> group  # ...then each model's answer, in the order of GENERATORS
        group >> judge >> languages
    return pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DATA, help="Hub dataset id or local .parquet/.jsonl (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--batch-size", type=int, default=10, help="distilabel input_batch_size (default 10)")
    parser.add_argument("--output", default="generated.jsonl", help="local JSON Lines output")
    parser.add_argument("--push", default=None, help="also push the result to this Hub dataset (private)")
    parser.add_argument("--ray", action="store_true", help="run on a Ray cluster (pipeline.ray())")
    args = parser.parse_args()
    rows = load_rows(args.data, args.limit)
    if not rows:
        raise SystemExit(f"No rows in {{args.data}}.")
    pipeline = build_pipeline(rows, args.batch_size)
    if args.ray:
        pipeline = pipeline.ray()
    distiset = pipeline.run(use_cache=False)
    train = distiset["default"]["train"]
    train.to_json(args.output, force_ascii=False)
    print(f"{{len(train)}} rows written to {{args.output}}")
    if args.push:
        distiset.push_to_hub(args.push, private=True, token=os.environ.get("HF_TOKEN"))
        print(f"pushed to https://huggingface.co/datasets/{{args.push}}")


if __name__ == "__main__":
    main()
'''


def _py(value: Any) -> str:
    """A Python literal for JSON-able ``value`` (repr of plain dicts/lists/str/int/float/bool/None)."""
    return repr(json.loads(json.dumps(value)))


def render_pipeline_script(meta: dict, *, data: str = "", router_url: str = ROUTER_URL) -> str:
    """A standalone ``pipeline.py`` reproducing the run described by ``meta`` (see :func:`build_raw_meta`).

    ``data`` is the default ``--data`` (the raw dataset's Hub id once pushed, or a local file). Values are written
    as Python literals with ``repr`` (no code injection through a system prompt or model id); keys are read from
    the environment at run time.
    """
    settings = meta.get("settings") or {}
    gen = dict(settings.get("generation") or {})
    jgen = dict(settings.get("judge_generation") or {})
    generation_kwargs = {
        "max_new_tokens": gen.get("max_new_tokens", 512),
        "temperature": gen.get("temperature", 0.7),
        "top_p": gen.get("top_p", 0.95),
    }
    if gen.get("seed") is not None:
        generation_kwargs["seed"] = gen["seed"]
    judge_kwargs = {"max_new_tokens": jgen.get("max_new_tokens", 1024), "temperature": jgen.get("temperature", 0.1)}
    target = hub_language(meta.get("language_code", "")) or ""
    lang = meta.get("language") or meta.get("language_code") or "a language"
    keep = ("kind", "model", "base_url", "provider")
    return _SCRIPT.format(
        date=meta.get("created_at") or _dt.date.today().isoformat(),
        language=str(lang).replace('"""', "'''"),
        distilabel=DISTILABEL_VERSION,
        repo_name=default_repo_name(meta.get("language", ""), meta.get("language_code", ""), "distilabel"),
        data=data,
        system_prompt=meta.get("system_prompt", ""),
        generators=_py([{k: g.get(k, "") for k in keep} for g in meta.get("generators") or []]),
        judge=_py({k: (meta.get("judge") or {}).get(k, "") for k in keep}),
        aspect=meta.get("aspect", "overall-rating"),
        generation_kwargs=_py(generation_kwargs),
        judge_kwargs=_py(judge_kwargs),
        target=target.split("-")[0],
        router_url=router_url,
        pipeline_name=default_repo_name(meta.get("language", ""), meta.get("language_code", ""), "generation"),
    )


# --------------------------------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------------------------------
def push_raw(raw: pa.Table, meta: dict, repo_id: str, token: str | None, *, private: bool = True,
             overwrite: bool = False) -> str:
    """Push the raw table to ``repo_id`` with its card, ``pipeline.py`` and ``dpo_studio.json`` (the metadata).

    Raises ``pipeline.hub.HubError`` with a message for the user. Returns the dataset URL.
    """
    from pipeline import hub

    if raw is None or raw.num_rows == 0:
        raise hub.HubError("There are no results to push yet: run the pipeline first.")
    raw = schema.conform_raw(raw).select(list(schema.RAW_COLUMNS))
    meta = {**meta, "rows": raw.num_rows, "counts": results.counts_by_status(raw), "checkpoint": False}
    return hub.push_dataset(
        raw,
        repo_id,
        token,
        private=private,
        card=render_raw_card(meta, raw),
        overwrite=overwrite,
        extra_files={
            "pipeline.py": render_pipeline_script(meta, data=hub.validate_repo_id(repo_id)),
            "dpo_studio.json": json.dumps(meta, ensure_ascii=False, indent=1),
        },
        commit_message=f"Raw generations ({raw.num_rows} rows) with DPO Studio",
    )


# --------------------------------------------------------------------------------------------------------------
# Hub checkpoints: the app pushes the results so far to a private dataset every N rows
# --------------------------------------------------------------------------------------------------------------
CHECKPOINT_MARKER = "dpo_studio.json"


def checkpoint_repo_state(repo_id: str, token: str | None, fingerprint: str) -> str:
    """``"absent"``, ``"ours"`` (a checkpoint of a run with these settings) or ``"other"`` (anything else).

    A run never overwrites a dataset that is not its own checkpoint. Raises ``hub.HubError``.
    """
    from pipeline import hub

    if not hub.repo_exists(repo_id, token):
        return "absent"
    try:
        meta = json.loads(hub.download_file(repo_id, CHECKPOINT_MARKER, token))
    except (hub.HubError, ValueError):
        return "other"
    return "ours" if meta.get("fingerprint") == fingerprint else "other"


def restore_checkpoint(repo_id: str, token: str | None, checkpoint: Any) -> int:
    """Copy a Hub checkpoint into the local ``checkpoint`` (a ``pipeline.generate.Checkpoint``); returns rows."""
    from pipeline import hub

    table = hub.load_dataset_table(repo_id, "train", token)
    missing = [c for c in schema.RAW_COLUMNS if c not in table.column_names and c not in schema.JUDGE_COLUMNS]
    if missing:
        raise hub.HubError(f"'{repo_id}' is not a DPO Studio raw dataset (missing {', '.join(missing)}).")
    checkpoint.write_table(table)
    return table.num_rows


def checkpoint_pusher(meta: dict, repo_id: str, token: str | None) -> Any:
    """A callable for ``generate.execute(on_checkpoint=...)`` that pushes the results so far to ``repo_id``
    (private, replacing the previous checkpoint). The token stays inside the closure, in the run's thread."""
    from pipeline import hub

    def push(handle: Any) -> None:
        table = handle.table()
        if table.num_rows == 0:
            return
        snapshot = {**meta, "fingerprint": handle.settings.fingerprint(), "checkpoint": True,
                    "rows": table.num_rows, "counts": results.counts_by_status(table)}  # fmt: skip
        hub.push_dataset(
            table, repo_id, token, private=True, overwrite=True,
            card=render_raw_card(snapshot, table).replace(
                "\n# ", "\n> **Checkpoint of a run in progress** (DPO Studio pushes the results so far every few "
                "rows; the final push replaces it).\n\n# ", 1,
            ),
            extra_files={CHECKPOINT_MARKER: json.dumps(snapshot, ensure_ascii=False, indent=1)},
            commit_message=f"Checkpoint: {table.num_rows} rows",
        )  # fmt: skip

    return push


def source_from_filtered(filtered: Any) -> tuple[dict, str, str]:
    """(source dict, language name, language code) of a ``pipeline.data.FilteredSet`` (or anything alike)."""
    src = getattr(filtered, "source", None)
    source = dict(DEFAULT_SOURCE)
    if src is not None:
        source.update({
            "dataset": getattr(src, "dataset_id", "") or AYA_DATASET,
            "split": getattr(src, "split", "") or "train",
            "license": getattr(src, "license", "") or "",
            "demo": bool(getattr(src, "is_demo", False)),
        })  # fmt: skip
        if getattr(src, "config", None):
            source["config"] = src.config
    return source, getattr(filtered, "language", "") or "", getattr(filtered, "language_code", "") or ""
