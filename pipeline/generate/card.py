"""The raw dataset's card: YAML metadata and a Markdown body (:func:`render_raw_card`) that say how the rows were made
(models, judge, sampling, language check, system prompt), the rows by status, what the judge did, the leaderboard,
the columns, and the source and licence, from the run's :class:`~pipeline.core.schema.RunMeta`.

Untrusted text (model ids, system prompts, dataset names) goes into code spans or fenced blocks it cannot close.
No I/O: :mod:`pipeline.generate.publish` pushes the card with the data.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline import langcheck
from pipeline.core import languages, schema
from pipeline.core.schema import Provenance, RunMeta
from pipeline.generate import results
from pipeline.generate.recipe import DISTILABEL_VERSION
from pipeline.judge import report


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
