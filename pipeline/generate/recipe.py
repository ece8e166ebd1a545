"""The ``pipeline.py`` that travels with a raw dataset: a standalone script that reproduces the run with distilabel's own
``Pipeline`` (so it can scale out on distilabel's Ray runner), rendered from the run's
:class:`~pipeline.core.schema.RunMeta` by :func:`render_pipeline_script`.

The generated script mirrors the data-is-better-together recipe: ``LoadDataFromDicts`` → one ``TextGeneration`` per
generator model → ``GroupColumns`` (the human response joins the group first, straight from the loader) →
``UltraFeedback`` (a pairwise run's script rates with UltraFeedback too: distilabel has no pairwise task) → a language check
with the detector DPO Studio's routing table picks for the language (langid, heliport or a Hub fastText model). LLMs: distilabel's ``OpenAILLM`` for OpenAI-compatible servers and for serverless models through the
HF router's OpenAI-compatible API, and ``InferenceEndpointsLLM(base_url=...)`` for dedicated endpoints
(``InferenceEndpointsLLM(model_id=...)`` is broken with current huggingface_hub, and ``base_url`` alone sends the
model name "dummy", which only endpoints ignore). Keys are read from the environment when the script runs; no token
is ever written into it, and no path of the machine that made it: its input is a Hub dataset id (the default once
the raw dataset is pushed) or the ``--data`` argument.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any

from pipeline import langcheck
from pipeline.core import languages
from pipeline.core.schema import RunMeta
from pipeline.generate.meta import build_raw_meta, default_repo_name

__all__ = ["DISTILABEL_VERSION", "ROUTER_URL", "build_raw_meta", "hub_dataset_id", "render_pipeline_script"]
# build_raw_meta (pipeline.generate.meta) is named here too for bench/pipeline.py, which imports it from here.

ROUTER_URL = "https://router.huggingface.co/v1"
DISTILABEL_VERSION = "1.5.3"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_FILE_SUFFIXES = (".parquet", ".jsonl", ".json", ".ndjson", ".csv")


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
