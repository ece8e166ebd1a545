"""What travels with a raw dataset: its metadata (:class:`pipeline.core.schema.RunMeta`), its card, and a
``pipeline.py`` that reproduces the run with distilabel's own ``Pipeline`` (so it can scale out on distilabel's Ray
runner), plus the push.

The generated script mirrors the data-is-better-together recipe: ``LoadDataFromDicts`` → one ``TextGeneration`` per
generator model → ``GroupColumns`` (the human response joins the group first, straight from the loader) →
``UltraFeedback`` → a language check with the detector DPO Studio's routing table picks for the language (langid,
heliport or a Hub fastText model). LLMs: distilabel's ``OpenAILLM`` for OpenAI-compatible servers and for serverless
models through the HF router's OpenAI-compatible API, and ``InferenceEndpointsLLM(base_url=...)`` for
dedicated endpoints (``InferenceEndpointsLLM(model_id=...)`` is broken with current huggingface_hub, and
``base_url`` alone sends the model name "dummy", which only endpoints ignore). Keys are read from the environment
when the script runs; no token is ever written into it, and no path of the machine that made it: its input is a
Hub dataset id (the default once the raw dataset is pushed) or the ``--data`` argument.

Every raw table this module writes carries its provenance and run metadata in its Arrow schema metadata
(``schema.with_provenance``), and the cards name the real source: the Hub dataset the rows were filtered from, the
demo data as demo data, or "not recorded" when nobody said (never a guess).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any

import pyarrow as pa

from pipeline import langcheck
from pipeline.core import languages, schema
from pipeline.core.schema import ModelRef, Provenance, RunMeta, Sampling
from pipeline.generate import results
from pipeline.judge import report

ROUTER_URL = "https://router.huggingface.co/v1"
AYA_DATASET = "CohereForAI/aya_dataset"
DISTILABEL_VERSION = "1.5.3"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_FILE_SUFFIXES = (".parquet", ".jsonl", ".json", ".ndjson", ".csv")


# --------------------------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------------------------
def build_raw_meta(
    settings: Any, raw: pa.Table | None, source: Provenance | None = None, language: str = "", language_code: str = ""
) -> RunMeta:
    """The run's metadata for the Argilla and Export tabs and for cards (no token anywhere).

    ``settings`` is a ``pipeline.generate.settings.RunSettings``; ``source`` the provenance of the rows (``None``: not
    known, and the cards say so); ``language``/``language_code`` their language (default: the source's, else the
    raw table's only ``target_language``).
    """
    d = settings.describe()
    source = source or Provenance()
    codes = set(raw.column("target_language").to_pylist()) if raw is not None and raw.num_rows else set()
    language_code = language_code or source.language_code or (next(iter(codes)) if len(codes) == 1 else "")
    return RunMeta(
        source=source,
        language=language or source.language,
        language_code=language_code,
        generators=tuple(ModelRef.from_dict(g) for g in d["generators"]),
        judge=ModelRef.from_dict(d["judge"]),
        system_prompt=d["system_prompt"],
        aspect=d["aspect"],
        generation=Sampling.from_dict(d["generation"]),
        judge_generation=Sampling.from_dict(d["judge_generation"]),
        concurrency=d.get("concurrency"),
        max_rows=d.get("max_rows"),
        max_tokens=d.get("max_tokens"),
        judge_mode=d.get("judge_mode") or "",
        judge_order=d.get("judge_order") or "",
        judge_structured=d.get("judge_structured"),
        fingerprint=settings.fingerprint(),
        rows=raw.num_rows if raw is not None else 0,
        counts=results.counts_by_status(raw),
        created_at=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
    )


def with_results(meta: RunMeta, raw: pa.Table, **changes: Any) -> RunMeta:
    """``meta`` with the rows, counts and judge figures of ``raw`` (and ``changes``)."""
    return meta.replace(
        rows=raw.num_rows, counts=results.counts_by_status(raw), judge_stats=report.judge_stats(raw), **changes
    )


def tag_raw(raw: pa.Table, meta: RunMeta) -> pa.Table:
    """``raw`` with ``meta`` and its provenance in the Arrow schema metadata (kept by every file written from it)."""
    return schema.with_provenance(raw, meta.source if meta.source.known else None, meta)


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


def _detector_line(code: str) -> str:
    """The card's line on the language check: the detector for ``code``, its version and measured figures."""
    if not code:
        return "none (no target language)."
    cov = langcheck.coverage(code)
    if cov.level == "unknown":
        return f"none ({cov.note})."
    scripts = "/".join(cov.scripts)
    if not cov.checked:
        return (
            f"script only ({scripts}): no detector knows the language, so `language_match` is empty for answers in "
            "the right script and false for answers in another script."
        )
    figures = f", measured recall {cov.recall:.0%} on human-written text" if cov.recall is not None else ""
    return (
        f"`{cov.detector}` {cov.version} on every answer{figures}, with a script check ({scripts}); "
        "`language_match` is empty where an answer could not be judged (no letters, mixed scripts)."
    )


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


def card_metadata(meta: RunMeta) -> dict:
    lang = languages.hub_tag(meta.language_code) or None
    out = {
        "license": meta.source.license or None,
        "language": [lang] if lang else None,
        "pretty_name": f"{meta.language_name or meta.language_code or 'Language'} DPO raw generations",
        "size_categories": [_size_category(int(meta.rows or 0))],
        "task_categories": ["text-generation"],
        "tags": ["dpo", "orpo", "preference", "ultrafeedback", "synthetic", "distilabel", "dpo-studio"]
        + (["demo"] if meta.source.demo else []),
    }
    if meta.source.dataset and not meta.source.demo:
        out["source_datasets"] = [meta.source.dataset]
    return out


def source_sentence(src: Provenance) -> str:
    """Where the prompts and human answers come from, in Markdown (untrusted text in code spans)."""
    if src.demo:
        return "DPO Studio's bundled demo data (self-written for its demo and tests, not Aya: do not train on it)"
    if not src.dataset:
        return "a source that was not recorded" + (f" (file {_code(src.file)})" if src.file else "")
    return _code(src.dataset)


def render_raw_body(meta: RunMeta, raw: pa.Table | None = None) -> str:
    """The markdown body of the raw dataset's card (see :func:`render_raw_card`)."""
    src = meta.source
    counts = dict(meta.counts)
    gen, jgen = meta.generation, meta.judge_generation
    lang = meta.language_name or meta.language_code or "your language"
    models = meta.models
    lines = [
        f"# {lang}: prompts, human and model responses, rated by an LLM judge",
        "",
        f"Raw step of a DPO/ORPO preference dataset for **{lang}**, built with DPO Studio following the "
        "data-is-better-together recipe. Each row holds a human-written prompt and answer from "
        f"{source_sentence(src)}, a second answer from "
        + ("each of the models below" if len(models) > 1 else "the model below")
        + f", an UltraFeedback rating of every answer (aspect {_code(meta.aspect)}) by an LLM judge, "
        "and the detected language of every answer. It is meant to be validated by people (e.g. in Argilla) "
        "before being turned into `prompt`/`chosen`/`rejected` pairs.",
        "",
        "## How it was made",
        "",
        "- Generator model(s): " + ", ".join(_code(m) for m in models),
        f"- Judge: {_code(meta.judge_model)}"
        + (
            " asked which answer is better (A, B or tie), the human answer against each model's"
            if meta.judge_mode == "pairwise"
            else f" with distilabel's `UltraFeedback` prompt, aspect {_code(meta.aspect)}"
        )
        + '; the prompt does not say which text is human (see "The judge" below for the order and figures).',
        f"- Generation: max new tokens {gen.max_new_tokens}, temperature {gen.temperature}, "
        f"top-p {gen.top_p}, seed {gen.seed}; judge: max new tokens {jgen.max_new_tokens}, "
        f"temperature {jgen.temperature}.",
        f"- Language check: {_detector_line(meta.language_code)}",
        "- System prompt:" if meta.system_prompt else "- System prompt: none.",
    ]
    if meta.system_prompt:
        lines += ["", _fence(meta.system_prompt), ""]
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
    stats = report.judge_stats(raw) if raw is not None and raw.num_rows else meta.judge_stats
    if stats is not None:
        lines += ["## The judge", ""]
        lines += report.judge_card_lines(
            stats, structured_asked=meta.judge_structured, check=meta.judge_check, judge_model=meta.judge_model
        )
        lines += [""]
        if raw is not None and raw.num_rows:
            lines += [_markdown_table(report.judge_leaderboard(raw)), ""]
    if raw is not None and raw.num_rows:
        board = results.leaderboard(raw)
        lines += ["## Leaderboard", "", _markdown_table(board), ""]
    lines += [
        "## Columns",
        "",
        "`id` (stable id of the prompt + human answer), `prompt`, `system_prompt`, `target_language` (ISO 639-3), "
        "`responses` (index 0 is the human answer), `response_sources` (`human` or the model id), `ratings` "
        "(1-5; the mean over both orders when judged twice; pairwise: 5 a win, 3 a tie, 1 a loss), `rationales`, "
        "`detected_languages`, `language_confidences`, `language_match`, `judge_model`, `aspect`, `status`, "
        "`error`, `judge_mode`, `judge_orders` (the order(s) the answers were shown in, as indices into "
        "`responses`), `judge_inconsistent` (judged in both orders and the preferred answer changed), "
        "`judge_structured` (the judge answered in JSON), `judge_winners` (pairwise: per model, `human`, `model` "
        "or `tie`).",
        "",
        "## Source and licence",
        "",
        _source_and_licence(src),
    ]
    return "\n".join(lines)


def _source_and_licence(src: Provenance) -> str:
    if src.demo:
        return (
            f"Prompts and human answers: the {schema.DEMO_LABEL}. They were written for DPO Studio's demo "
            "and tests: do not train a model on them."
        )
    if not src.dataset:
        return (
            "Prompts and human answers: the source was not recorded (the filtered set was made outside DPO "
            "Studio or without its provenance). Check its licence before sharing. Model answers and ratings are "
            "subject to the terms of the models that wrote them."
        )
    where = [f"split {_code(src.split)}"] if src.split else []
    if src.config:
        where.insert(0, f"configuration {_code(src.config)}")
    if src.revision:
        where.append(f"revision {_code(src.revision)}")
    filters = "; ".join(src.filter_notes)
    return (
        f"Prompts and human answers: {_code(src.dataset)}"
        + (f" ({', '.join(where)})" if where else "")
        + (f", filtered: {_code(filters)}" if filters else "")
        + f", licence {_code(src.license or 'see source')}. Model answers and ratings are subject to the "
        "terms of the models that wrote them."
    )


def render_raw_card(meta: RunMeta, raw: pa.Table | None = None) -> str:
    """The raw dataset's card (YAML metadata + markdown) via ``pipeline.core.hub.render_card``."""
    from pipeline.core import hub

    return hub.render_card(card_metadata(meta), render_raw_body(meta, raw))


# --------------------------------------------------------------------------------------------------------------
# pipeline.py
# --------------------------------------------------------------------------------------------------------------
_SCRIPT = '''\
"""Reproduce a DPO Studio generation run with distilabel's own Pipeline (and scale it out with Ray).

Made by DPO Studio on {date} for {language}. For every prompt: one answer per generator model, the human answer
and the model answers grouped (human first), an UltraFeedback rating of each by the judge, and a check of each
answer's language with the detector DPO Studio uses for it ({detector}). Mirrors the data-is-better-together
"DPO/ORPO dataset for a new language" recipe.

    pip install "distilabel[openai,hf-inference-endpoints]=={distilabel}" {detector_packages}
    export HF_TOKEN=hf_...            # for serverless/endpoint models and --push (never put it in this file)
    export OPENAI_API_KEY=...         # only if your OpenAI-compatible server needs a key
    python pipeline.py {data_usage}--limit 10     # try a few rows first
    python pipeline.py {data_usage}--output generated.jsonl [--push your-name/{repo_name}] [--ray]

--data takes a Hub dataset id or a local .parquet/.jsonl file with either a `responses` column (a DPO Studio raw
dataset: index 0 is the human answer) or `prompt` + `response` columns (a DPO Studio filtered
set).{data_note}{judge_note}
"""

import argparse
import os
import sys

from distilabel.pipeline import Pipeline
from distilabel.steps import GroupColumns, LoadDataFromDicts, StepInput, step
from distilabel.steps.tasks import TextGeneration, UltraFeedback

DATA = {data!r}  # a Hub dataset id, or None: give --data
SYSTEM_PROMPT = {system_prompt!r}
GENERATORS = {generators}
JUDGE = {judge}
ASPECT = {aspect!r}
GENERATION_KWARGS = {generation_kwargs}
JUDGE_KWARGS = {judge_kwargs}
# The judge answers in JSON that fits this schema (distilabel's UltraFeedback schema, bounded to one rating 1-5 per
# text), sent as the server's structured output; None: the plain UltraFeedback text format.
JUDGE_SCHEMA = {judge_schema}
TARGET_LANGUAGE = {target!r}  # ISO 639-1
# The language check DPO Studio uses for this language (its routing table, measured per language): "langid",
# "heliport", a fastText model on the Hub ("glotlid"/"openlid"), or "script" (no detector knows the language: the
# answers are not checked here). TARGET_LABELS: the detector's labels that count as the target language.
LANGUAGE_DETECTOR = {detector!r}
TARGET_LABELS = {target_labels}
LANGUAGE_MODEL_REPO = {model_repo!r}
HF_ROUTER_URL = {router_url!r}


def make_llm(backend, generation_kwargs, schema=None):
    """distilabel LLM for one backend; keys come from the environment. ``schema``: ask for JSON that fits it."""
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
            structured_output={{"format": "json", "schema": schema}} if schema else None,  # TGI's grammar
        )
    extra_body = {{}}
    if seed is not None:
        extra_body["seed"] = seed
    if schema and backend["kind"] == "serverless":  # OpenAI's form; the router translates it per provider
        extra_body["response_format"] = {{"type": "json_schema", "json_schema": {{"name": "ultrafeedback",
                                                                                "schema": schema}}}}
    elif schema:  # llama.cpp servers follow the schema; vLLM and Ollama take it as JSON mode
        extra_body["response_format"] = {{"type": "json_object", "schema": schema}}
    if extra_body:
        kwargs["extra_body"] = extra_body
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


class JsonUltraFeedback(UltraFeedback):
    """distilabel's UltraFeedback reading the judge's JSON (its structured-output parser), with the schema sent by
    make_llm as the server's own structured output: the same as use_default_structured_output=True, without the
    instructor/outlines packages that distilabel needs to send it itself."""

    def format_output(self, output, input=None):
        if output is None:
            return super().format_output(output, input)
        return self._format_structured_output(output, input)


def make_language_detector():
    """text -> the detector's label, for LANGUAGE_DETECTOR; None when no detector knows the language."""
    if LANGUAGE_DETECTOR == "langid":
        import langid

        return lambda text: langid.classify(text)[0]
    if LANGUAGE_DETECTOR == "heliport":
        from heliport import Identifier

        identifier = Identifier()
        return lambda text: identifier.identify(" ".join(text.split()), ignore_confidence=True)
    if LANGUAGE_MODEL_REPO:
        import fasttext  # pip install fasttext-predict
        from huggingface_hub import hf_hub_download

        model = fasttext.load_model(hf_hub_download(LANGUAGE_MODEL_REPO, "model.bin"))
        return lambda text: model.predict(" ".join(text.split()), k=1)[0][0].removeprefix("__label__")
    return None


@step(inputs=["generations"], outputs=["detected_languages", "language_match"])
def DetectLanguages(inputs: StepInput):
    """The detector's language of every answer, and whether it is the target language."""
    detect = make_language_detector()
    for row in inputs:
        found = [detect(text) if detect and text and text.strip() else None for text in row["generations"]]
        row["detected_languages"] = found
        row["language_match"] = [None if label is None else label in TARGET_LABELS for label in found]
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
        task = JsonUltraFeedback if JUDGE_SCHEMA else UltraFeedback
        judge = task(llm=make_llm(JUDGE, JUDGE_KWARGS, JUDGE_SCHEMA), aspect=ASPECT, input_batch_size=batch_size)
        languages = DetectLanguages(input_batch_size=batch_size)
        load >> group  # the human answer joins the group first...
        load >> generate
        generate >> group  # ...then each model's answer, in the order of GENERATORS
        group >> judge >> languages
    return pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DATA, required=DATA is None,
                        help="Hub dataset id or local .parquet/.jsonl" + (" (default: %(default)s)" if DATA else ""))
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


def hub_dataset_id(data: str) -> str | None:
    """``data`` if it is a Hub dataset id (``owner/name``), ``None`` for anything else (a local file or folder)."""
    data = (data or "").strip()
    if not _HUB_ID.match(data) or data.lower().endswith(_FILE_SUFFIXES) or data.startswith("."):
        return None
    return data


def _script_judge_note(meta: RunMeta) -> str:
    """What the script's judge does differently from the run's (distilabel has no pairwise task, and its
    UltraFeedback shows the texts in group order)."""
    if meta.judge_mode == "pairwise":
        return (
            "\nThe run's judge was pairwise (the human answer against each model's: A, B or tie); distilabel has "
            "no such task,\nso this script rates every answer with UltraFeedback instead."
        )
    if meta.judge_order == "both":
        return "\nThe run judged every row in both orders; this script judges once, the human answer first."
    return ""


def _script_judge_schema(meta: RunMeta) -> dict | None:
    """The JSON schema the script's judge is asked for: distilabel's UltraFeedback schema with one rating (1-5) and
    one rationale per text; None when the run used the text format (asked for it, or its judge fell back)."""
    stats = meta.judge_stats
    if meta.judge_structured is False or (stats is not None and stats.judged and not stats.structured):
        return None
    from pipeline import judge

    n = 1 + len(meta.generators)
    schema_ = judge.distilabel_schema(meta.aspect or judge.DEFAULT_ASPECT)
    props = schema_["properties"]
    for name, prop in props.items():
        if prop.get("type") == "array":
            prop.update(minItems=n, maxItems=n)
            if name == "ratings":
                prop["items"] = {"type": "integer", "enum": list(range(judge.MIN_RATING, judge.MAX_RATING + 1))}
            elif prop["items"].get("type") == "string":
                prop["items"] = {"type": "string", "maxLength": judge.RATIONALE_MAX_CHARS}
    return schema_


def render_pipeline_script(meta: RunMeta, *, data: str = "", router_url: str = ROUTER_URL) -> str:
    """A standalone ``pipeline.py`` reproducing the run described by ``meta`` (see :func:`build_raw_meta`).

    ``data`` is the default ``--data`` when it is a Hub dataset id (the raw dataset's, once pushed). Anything else
    (a local file) is left out: the script then requires ``--data``, so it holds no path of this machine. Values
    are written as Python literals with ``repr`` (no code injection through a system prompt or model id); keys are
    read from the environment at run time.
    """
    gen, jgen = meta.generation, meta.judge_generation
    generation_kwargs: dict[str, Any] = {
        "max_new_tokens": gen.max_new_tokens if gen.max_new_tokens is not None else 512,
        "temperature": gen.temperature if gen.temperature is not None else 0.7,
        "top_p": gen.top_p if gen.top_p is not None else 0.95,
    }
    if gen.seed is not None:
        generation_kwargs["seed"] = gen.seed
    judge_kwargs = {
        "max_new_tokens": jgen.max_new_tokens if jgen.max_new_tokens is not None else 1024,
        "temperature": jgen.temperature if jgen.temperature is not None else 0.1,
    }
    target = languages.hub_tag(meta.language_code)
    spec = langcheck.detector_spec(meta.language_code) if meta.language_code else None
    lang = meta.language_name or meta.language_code or "a language"
    hub_id = hub_dataset_id(data)
    return _SCRIPT.format(
        date=meta.created_at or _dt.date.today().isoformat(),
        language=str(lang).replace('"""', "'''"),
        distilabel=DISTILABEL_VERSION,
        repo_name=default_repo_name(meta.language_name, meta.language_code, "distilabel"),
        data=hub_id,
        data_usage="" if hub_id else "--data raw.parquet ",
        data_note="" if hub_id else "\nThere is no default: --data is required (the run's input was a local file).",
        judge_note=_script_judge_note(meta),
        system_prompt=meta.system_prompt,
        generators=_py([g.to_dict() for g in meta.generators]),
        judge=_py(meta.judge.to_dict()),
        aspect=meta.aspect or "overall-rating",
        generation_kwargs=_py(generation_kwargs),
        judge_kwargs=_py(judge_kwargs),
        judge_schema=_py(_script_judge_schema(meta)),
        target=target.split("-")[0],
        detector=spec.detector if spec else "script",
        detector_packages=spec.packages if spec else "",
        target_labels=_py(list(spec.labels) if spec else []),
        model_repo=spec.hub_repo if spec else "",
        router_url=router_url,
        pipeline_name=default_repo_name(meta.language_name, meta.language_code, "generation"),
    )


# --------------------------------------------------------------------------------------------------------------
# Push
# --------------------------------------------------------------------------------------------------------------
def push_raw(
    raw: pa.Table, meta: RunMeta, repo_id: str, token: str | None, *, private: bool = True, overwrite: bool = False
) -> str:
    """Push the raw table to ``repo_id`` with its card, ``pipeline.py`` and ``dpo_studio.json`` (the metadata,
    also in the Parquet file's schema metadata).

    Raises ``pipeline.core.hub.HubError`` with a message for the user. Returns the dataset URL.
    """
    from pipeline.core import hub

    if raw is None or raw.num_rows == 0:
        raise hub.HubError("There are no results to push yet: run the pipeline first.")
    raw = schema.conform_raw(raw).select(list(schema.RAW_COLUMNS))
    meta = with_results(meta, raw, checkpoint=False)
    return hub.push_dataset(
        tag_raw(raw, meta),
        repo_id,
        token,
        private=private,
        card=render_raw_card(meta, raw),
        overwrite=overwrite,
        extra_files={
            "pipeline.py": render_pipeline_script(meta, data=hub.validate_repo_id(repo_id)),
            "dpo_studio.json": meta.to_json(),
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
    from pipeline.core import hub

    if not hub.repo_exists(repo_id, token):
        return "absent"
    try:
        meta = RunMeta.from_json(hub.download_file(repo_id, CHECKPOINT_MARKER, token))
    except (hub.HubError, schema.MetaError):
        return "other"
    return "ours" if meta.fingerprint == fingerprint else "other"


def restore_checkpoint(repo_id: str, token: str | None, checkpoint: Any) -> int:
    """Copy a Hub checkpoint into the local ``checkpoint`` (a ``pipeline.generate.Checkpoint``); returns rows."""
    from pipeline.core import hub

    table = hub.load_dataset_table(repo_id, "train", token)
    missing = [c for c in schema.RAW_COLUMNS if c not in table.column_names and c not in schema.JUDGE_COLUMNS]
    if missing:
        raise hub.HubError(f"'{repo_id}' is not a DPO Studio raw dataset (missing {', '.join(missing)}).")
    checkpoint.write_table(table)
    return table.num_rows


def checkpoint_pusher(meta: RunMeta, repo_id: str, token: str | None) -> Any:
    """A callable for ``generate.execute(on_checkpoint=...)`` that pushes the results so far to ``repo_id``
    (private, replacing the previous checkpoint). The token stays inside the closure, in the run's thread."""
    from pipeline.core import hub

    def push(handle: Any) -> None:
        table = handle.table()
        if table.num_rows == 0:
            return
        snapshot = with_results(meta, table, fingerprint=handle.settings.fingerprint(), checkpoint=True)
        hub.push_dataset(
            tag_raw(table, snapshot),
            repo_id,
            token,
            private=True,
            overwrite=True,
            card=render_raw_card(snapshot, table).replace(
                "\n# ",
                "\n> **Checkpoint of a run in progress** (DPO Studio pushes the results so far every few "
                "rows; the final push replaces it).\n\n# ",
                1,
            ),
            extra_files={CHECKPOINT_MARKER: snapshot.to_json()},
            commit_message=f"Checkpoint: {table.num_rows} rows",
        )

    return push


def source_from_filtered(filtered: Any) -> tuple[Provenance, str, str]:
    """(provenance, language name, language code) of a ``pipeline.filter.filtered.FilteredSet``: its own provenance (source
    dataset or demo data, config, split, filters, language); an empty ``Provenance`` when there is none."""
    provenance = filtered.provenance() if hasattr(filtered, "provenance") else Provenance()
    language = getattr(filtered, "language", "") or provenance.language
    code = getattr(filtered, "language_code", "") or provenance.language_code
    return provenance, language, code
