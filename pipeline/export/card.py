"""Export: the dataset card of a preference dataset (YAML front matter + Markdown), from the
:class:`~pipeline.export.build.ExportResult` and the run's :class:`~pipeline.core.schema.RunMeta`.

The card names the real source of the prompts: the Hub dataset the Filter step recorded (with its licence), the
demo data as demo data (never as Aya), or "not recorded" when nothing says where the rows come from. Untrusted
text (system prompt, model ids, dataset ids) is escaped or fenced. No network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pipeline.core import languages, schema
from pipeline.core.schema import Provenance, RunMeta
from pipeline.export.formats import FORMAT_LABELS
from pipeline.export.rules import DROP_RULES, IMPROVED_SOURCE, counts_table
from pipeline.judge import report

if TYPE_CHECKING:  # pragma: no cover
    from pipeline.export.build import ExportResult


def _language_check(code: str) -> str:
    """Which language check ``code`` gets, for the card: the detector and its version, and its measured recall."""
    from pipeline import langcheck

    cov = langcheck.coverage(code)
    if cov.level == "unknown":
        return "no detector (unknown language code)"
    scripts = "/".join(cov.scripts)
    if not cov.checked:
        return f"the script check only ({scripts}: no detector knows the language)"
    recall = f", measured recall {cov.recall:.0%} on human-written text" if cov.recall is not None else ""
    return f"`{_md_cell(cov.detector)}` {_md_cell(cov.version)}{recall}, and a script check ({scripts})"


def language_name(code: str, meta: RunMeta | None = None) -> str:
    """A readable language name: the one the Filter step recorded, else from langcodes, else the code.

    Example:

    ```python
    >>> language_name("nld", RunMeta(language="Nederlands"))
    'Nederlands'

    ```
    """
    recorded = (meta.language_name if meta is not None else "").strip()
    if recorded and recorded.lower() != code.lower():
        return recorded
    return languages.display_name(code)


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` value for ``n`` rows."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def as_run_meta(meta: RunMeta | Mapping[str, Any] | None) -> RunMeta:
    """``meta`` as a :class:`RunMeta`: as it is, or read from a mapping (a ``dpo_studio.json``'s content, old key
    names included) with :meth:`RunMeta.from_dict`; ``None`` → an empty one (nothing known)."""
    if isinstance(meta, RunMeta):
        return meta
    return RunMeta.from_dict(meta or {})


def export_source(result: ExportResult, meta: RunMeta) -> Provenance:
    """Where the export's prompts come from: the run's recorded source, else the raw table's provenance."""
    if meta.source.known:
        return meta.source
    return result.source if result.source is not None else Provenance()


def _meta_models(result: ExportResult, meta: RunMeta) -> tuple[list[str], list[str]]:
    """(generator models, judge models) from the run's metadata, else from the pairs."""
    gens = meta.models
    if not gens:
        seen = {p.chosen_model for p in result.pairs} | {p.rejected_model for p in result.pairs}
        gens = sorted(s for s in seen if s not in (schema.HUMAN, IMPROVED_SOURCE) and not s.startswith("response "))
    return gens, [meta.judge_model] if meta.judge_model else []


def card_metadata(result: ExportResult, meta: RunMeta | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The card's YAML front matter: language, licence, task categories, tags, size and source dataset.

    ``meta`` is the run's metadata (see :func:`as_run_meta`). The ``argilla`` tag is added only when annotators'
    answers are in the export, ``demo`` when the prompts are the bundled demo data.
    """
    meta = as_run_meta(meta)
    source = export_source(result, meta)
    tag = languages.hub_tag(result.target_language)
    name = language_name(result.target_language, meta)
    tags = ["dpo", "orpo", "distilabel"]
    feedback = meta.human_feedback
    if result.counts.get("from_human") and (feedback is None or feedback.argilla_rows):
        tags.append("argilla")
    tags += ["dpo-studio", "preference"]
    if source.demo:
        tags.append("demo")
    if name:
        tags.append(name.lower())
    out: dict[str, Any] = {
        "language": [tag] if tag else [],
        "task_categories": ["text-generation"],
        "tags": list(dict.fromkeys(tags)),
        "size_categories": [size_category(result.num_rows)],
        "pretty_name": f"{name} DPO/ORPO preferences" if name else "DPO/ORPO preferences",
    }
    if source.license and not source.demo:
        out["license"] = source.license
    if source.dataset and not source.demo:
        out["source_datasets"] = [source.dataset]
    return out


def _fence(text: str) -> str:
    """``text`` in a fenced block that its own backticks cannot close (untrusted text stays text)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _md_cell(text: Any) -> str:
    """A value safe inside a Markdown table cell (no HTML, no pipes, no line breaks)."""
    import html

    return html.escape(str(text)).replace("|", "\\|").replace("\n", " ")


def _source_line(source: Provenance, name: str) -> str:
    """Step 1 of "How it was made": the real source of the prompts, in Markdown (untrusted text escaped)."""
    if source.demo:
        return (
            f"1. **Prompts and human responses** in {_md_cell(name)} from DPO Studio's bundled demo data "
            "(self-written for its demo and tests, not from Aya): fine for trying the tool, not for training a "
            "model."
        )
    if not source.dataset:
        return (
            f"1. **Prompts and human responses** in {_md_cell(name)}; their source was not recorded (check "
            "where they come from, and their licence, before you share this dataset)."
        )
    where = ", ".join(
        part
        for part in (
            f"configuration `{_md_cell(source.config)}`" if source.config else "",
            f"split `{_md_cell(source.split)}`" if source.split else "",
            f"licence: `{_md_cell(source.license)}`" if source.license else "",
        )
        if part
    )
    line = (
        f"1. **Prompts and human responses** from [`{_md_cell(source.dataset)}`](https://huggingface.co/"
        f"datasets/{quote(source.dataset, safe='/')})"
        + (f" ({where})" if where else "")
        + f", filtered to {_md_cell(name)}"
    )
    if source.filter_notes:
        line += " (" + "; ".join(_md_cell(n) for n in source.filter_notes) + ")"
    return line + "."


def _human_line(feedback: schema.HumanFeedback | None) -> str:
    """Step 4 of "How it was made": who gave the human preferences (the judge-check panel, Argilla, or both)."""
    if feedback is None or not feedback.any:
        return "4. **Human preferences** from people's answers (their source was not recorded)."
    line = f"4. **Human preferences**: {_md_cell(feedback.describe())}."
    if feedback.set_aside:
        line += (
            f" {feedback.set_aside} panel label(s) were set aside: the answers they were given for changed in a "
            "later run."
        )
    return line


def card_body(result: ExportResult, meta: RunMeta | Mapping[str, Any] | None = None, repo_id: str = "") -> str:
    """The card's Markdown: what the dataset is, how it was made (source, models, system prompt, rules and
    counts), its columns, how to load it in TRL, and its limits. Untrusted text (system prompt, model ids) is
    escaped or fenced."""
    meta = as_run_meta(meta)
    name = language_name(result.target_language, meta)
    gens, judges = _meta_models(result, meta)
    source = export_source(result, meta)
    system_prompt = meta.system_prompt or next((p.system_prompt for p in result.pairs if p.system_prompt), "")
    repo = repo_id or "<your-namespace>/<this-dataset>"
    splits = ", ".join(f"{k}: {v.num_rows}" for k, v in result.splits.items())
    lines = [
        f"# {_md_cell(name)} DPO/ORPO preference dataset",
        "",
        f"A preference dataset (`prompt`, `chosen`, `rejected`) in **{_md_cell(name)}** "
        f"(`{_md_cell(result.target_language)}`), ready for TRL's `DPOTrainer` and `ORPOTrainer`. "
        "It was built with DPO Studio, following the data-is-better-together recipe "
        '"DPO/ORPO dataset for a new language".',
        "",
        f"- Rows: {result.num_rows} ({splits}); format: **{result.format}** — {FORMAT_LABELS[result.format]}.",
        f"- Preferences from people: {result.counts.get('from_human', 0)}; from the LLM judge: "
        f"{result.counts.get('from_judge', 0)}.",
    ]
    if result.test_size:
        lines.append(f"- Train/test split by prompt: test size {result.test_size}, seed {result.seed}.")
    lines += ["", "## How it was made", ""]
    lines.append(_source_line(source, name))
    lines.append(
        "2. **A second response** for each prompt from "
        + (", ".join(f"`{_md_cell(g)}`" for g in gens) if gens else "the generator model(s)")
        + "."
    )
    lines.append(
        (
            "3. **Verdicts** of a pairwise LLM judge (which answer is better: the human's or the model's, or a tie)"
            if (result.judge and result.judge.mode == "pairwise") or meta.judge_mode == "pairwise"
            else "3. **Ratings** (1–5) of every response by an UltraFeedback LLM judge"
        )
        + (" (" + ", ".join(f"`{_md_cell(j)}`" for j in judges) + ")" if judges else "")
        + (f", aspect `{_md_cell(meta.aspect)}`" if meta.aspect else "")
        + f", and the **language** of every response checked with {_language_check(result.target_language)}."
    )
    if result.counts.get("from_human"):
        lines.append(_human_line(meta.human_feedback))
    if system_prompt:
        lines += ["", "System prompt used for generation:", "", _fence(str(system_prompt))]
    lines += ["", "### Rules", "", "| Rule | Setting |", "|---|---|"]
    lines += [f"| {_md_cell(a)} | {_md_cell(b)} |" for a, b in result.rules.describe()]
    lines += ["", "### Counts", "", "| | Rows |", "|---|---:|"]
    lines += [f"| {_md_cell(label)} | {value} |" for label, value in counts_table(result.counts, all_rules=False)]
    if not any(result.counts.get(r) for r in DROP_RULES):
        lines.append("| No rule dropped any row | 0 |")
    if result.agreement.get("rows"):
        ag = result.agreement
        kappa = "n/a" if ag.get("kappa") is None else f"{ag['kappa']:.2f}"
        lines += [
            "",
            f"Judge versus annotators, on the {ag['rows']} rows where both gave a preference: the judge agreed on "
            f"{ag['agree']} ({ag['share']:.0%}); Cohen's kappa {kappa}.",
        ]
    judge_stats = result.judge or meta.judge_stats
    if judge_stats is not None and judge_stats.judged:
        lines += ["", "### The judge", ""]
        lines += report.judge_card_lines(
            judge_stats, structured_asked=meta.judge_structured, check=meta.judge_check, judge_model=meta.judge_model
        )
    for note in result.notes:
        lines += ["", f"Note: {_md_cell(note)}"]
    lines += [
        "",
        "## Columns",
        "",
        "| Column | Meaning |",
        "|---|---|",
        "| `prompt`, `chosen`, `rejected` | the preference pair (see the format above) |",
        "| `id` | the source row's id (with `-<chosen>-<rejected>` indices when a prompt gives several pairs) |",
        "| `chosen_rating`, `rejected_rating`, `margin` | ratings (1–5; annotators' mean where they rated) and their "
        "difference (negative when the annotators' vote and their mean ratings disagree; the vote decides) |",
        "| `tie` | the two responses were rated equal |",
        "| `preference_source` | `human` (annotators) or `judge` |",
        "| `n_annotators`, `agreement` | how many annotators answered; the share that agreed with the majority |",
        "| `chosen_model`, `rejected_model` | where each response came from (`human` = the source dataset, "
        f"`{IMPROVED_SOURCE}` = rewritten by an annotator) |",
        "| `chosen_language`, `rejected_language`, `target_language` | detected and target languages (ISO 639-3) |",
        "",
        "## Use it with TRL",
        "",
        "```python",
        "from datasets import load_dataset",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "from trl import DPOConfig, DPOTrainer",
        "",
        f'dataset = load_dataset("{repo}")',
        'model_id = "Qwen/Qwen2.5-0.5B-Instruct"  # any chat model that knows the language',
        "model = AutoModelForCausalLM.from_pretrained(model_id)",
        "tokenizer = AutoTokenizer.from_pretrained(model_id)",
        "trainer = DPOTrainer(",
        "    model=model,",
        '    args=DPOConfig(output_dir="dpo-model"),',
        '    train_dataset=dataset["train"],',
    ]
    if "test" in result.splits:
        lines.append('    eval_dataset=dataset["test"],')
    lines += [
        "    processing_class=tokenizer,",
        ")",
        "trainer.train()",
        "```",
        "",
        "`ORPOTrainer` (with `ORPOConfig`) takes the same dataset. The extra columns are ignored by the trainers.",
        "",
        "## Limits",
        "",
        "- The judge is an LLM: its ratings can be wrong, more so in languages it knows less. Rows with "
        "`preference_source = judge` were not checked by a person.",
        "- Responses whose language could not be judged (no letters, mixed scripts, or no detector for the "
        f"language) are kept ({result.counts.get('language_unchecked', 0)} pairs here).",
        "- Human responses come from the source dataset as they are.",
    ]
    if source.demo:
        lines.append("- The prompts are DPO Studio's demo data: do not train a model on this dataset.")
    return "\n".join(lines) + "\n"


def render_export_card(result: ExportResult, meta: RunMeta | Mapping[str, Any] | None = None, repo_id: str = "") -> str:
    """The whole README.md (YAML front matter + body) for the export, via :func:`pipeline.core.hub.render_card`."""
    from pipeline.core import hub

    return hub.render_card(card_metadata(result, meta), card_body(result, meta, repo_id))
