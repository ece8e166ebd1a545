"""People's preferences for the judge check (``pipeline.judge.check``): labelling a pilot run, and the rows a check
is scored against.

- **Rows with a people's preference** (:class:`CheckItem`): from an Argilla pull joined with the raw rows
  (:func:`items_from_annotations`), or from people labelling a pilot run in the app (:func:`items_from_labels`);
  :func:`check_items` refuses rows that cannot be trusted as asked (none, or another language than the run's).
- **Labelling**: :func:`label_tasks` picks 10-50 rows of a pilot run's raw table and, per row, two answers in a
  random order with their sources hidden; people answer A / B / tie / both bad (:class:`Label`).
  :func:`labels_to_annotations` turns the labels into annotation rows (``schema.ANNOTATION_COLUMNS``:
  ``n_annotators=1``, ``human_preference`` the chosen answer's index or ``-1`` for a tie; "both bad" is a discard:
  ``n_annotators=0, n_discarded=1``, which Export's "drop rows annotators discarded" rule drops), so Export uses them
  like Argilla's answers; :func:`merge_annotations` adds them to annotations pulled from Argilla (whose rows win).
  Labels are self-contained (prompt and answers included), so they survive a new pilot run and can be saved to a
  file (:func:`labels_table` / :func:`labels_from_table`, ``schema.LABEL_COLUMNS``) for the CLI.

Bad input raises :class:`JudgeCheckError` with a message that says what to do. Pure functions of tables; no calls,
no Gradio.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import pyarrow as pa

from pipeline.core import languages, schema
from pipeline.judge import agreement

MIN_LABEL_ROWS: Final = 10
MAX_LABEL_ROWS: Final = 50
DEFAULT_LABEL_ROWS: Final = 20

SOURCE_LABELS: Final = "labels"
SOURCE_ANNOTATIONS: Final = "annotations"

CHOICE_A: Final = "A"
CHOICE_B: Final = "B"
CHOICE_TIE: Final = "tie"
CHOICE_BAD: Final = "both bad"
CHOICES: Final = (CHOICE_A, CHOICE_B, CHOICE_TIE, CHOICE_BAD)

NO_LABELS: Final = (
    "No labelled rows yet: label 10-50 rows of a pilot run in the panel (A, B or tie; 'both bad' rows are not "
    "counted), then run the check."
)
NO_ANNOTATED_ROWS: Final = (
    "No row carries a people's preference: pull the Argilla answers of this run's records (python -m pipeline "
    "argilla pull), or label rows of a pilot run in the app, then run the check."
)


class JudgeCheckError(ValueError):
    """A judge check that cannot run as asked; the message says what to do."""


# --------------------------------------------------------------------------------------------------------------
# Rows with a people's preference
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckItem:
    """One row the judges see: ``texts`` are the answers in the raw row's order (``indices`` into its
    ``responses``); ``human`` is the people's preferred answer (one of ``indices``) or ``-1`` for a tie."""

    id: str
    prompt: str
    texts: tuple[str, ...]
    indices: tuple[int, ...]
    human: int
    language: str = ""  # the raw row's target_language (ISO 639-3)


@dataclass(frozen=True)
class LabelTask:
    """One row to label: a prompt and two answers, shown as A and B (``shown``: their raw indices)."""

    id: str
    prompt: str
    shown: tuple[int, int]
    answers: tuple[str, str]
    language: str
    n_responses: int

    def label(self, choice: str) -> Label:
        if choice not in CHOICES:
            raise JudgeCheckError(f"Unknown answer {choice!r}: choose one of {', '.join(CHOICES)}.")
        return Label(self.id, self.prompt, self.shown, self.answers, choice, self.language, self.n_responses)


@dataclass(frozen=True)
class Label:
    """One person's answer to a :class:`LabelTask`."""

    id: str
    prompt: str
    shown: tuple[int, int]  # raw indices of the answers shown as A and B
    answers: tuple[str, str]  # the answers as shown (A, B)
    choice: str  # one of CHOICES
    language: str  # the row's target_language
    n_responses: int  # len(responses) of the raw row

    @property
    def texts_hash(self) -> str:
        """A hash of the exact texts people saw (the prompt and both answers, as shown): a label belongs to these
        texts, never to a row id alone (:func:`current_labels`)."""
        return shown_texts_hash(self.prompt, self.answers)

    @property
    def preference(self) -> int | None:
        """The chosen answer's raw index, ``-1`` for a tie, ``None`` for "both bad"."""
        if self.choice == CHOICE_A:
            return self.shown[0]
        if self.choice == CHOICE_B:
            return self.shown[1]
        return agreement.TIE if self.choice == CHOICE_TIE else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def shown_texts_hash(prompt: str, answers: Sequence[str]) -> str:
    """sha256 of a prompt and the answers in the order shown (length-prefixed, so no two splits collide)."""
    digest = hashlib.sha256()
    for text in (prompt, *answers):
        data = _text(text).encode()
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def current_labels(labels: Iterable[Label], raw: pa.Table | None) -> tuple[list[Label], int]:
    """The labels that still belong to ``raw``: the row with the label's id has, at the label's shown indices,
    exactly the texts people saw (same :func:`shown_texts_hash`). Returns (those labels, how many were set aside
    because the row is gone or its texts changed, e.g. after a new run). A label is never reused for other texts.
    Without a raw table there is nothing to attach labels to: all are returned."""
    labels = list(labels)
    if raw is None:
        return labels, 0
    columns = [c for c in ("id", "prompt", "responses") if c in raw.column_names]
    rows = {_text(r.get("id")): r for r in raw.select(columns).to_pylist()}
    kept = []
    for lab in labels:
        row = rows.get(lab.id)
        if row is None:
            continue
        responses = [_text(r) for r in row.get("responses") or []]
        if max(lab.shown) >= len(responses):
            continue
        shown = [responses[i] for i in lab.shown]
        if shown_texts_hash(_text(row.get("prompt")), shown) == lab.texts_hash:
            kept.append(lab)
    return kept, len(labels) - len(kept)


def _require(table: pa.Table | None, columns: Sequence[str], what: str, todo: str) -> pa.Table:
    """``table`` when it is there with ``columns``; else :class:`JudgeCheckError` saying what to do."""
    if table is None:
        raise JudgeCheckError(f"No {what}: {todo}")
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise JudgeCheckError(
            f"The {what} lacks the column(s) {', '.join(missing)} (it has {', '.join(table.column_names) or 'none'}):"
            f" {todo}"
        )
    return table


def label_tasks(raw: pa.Table | None, limit: int = DEFAULT_LABEL_ROWS, *, seed: str = "") -> list[LabelTask]:
    """Up to ``limit`` rows (10-50) of a pilot run's raw table to label, a random sample that is the same for the
    same table and ``seed``. Per row: the human answer and one model answer (chosen at random when there are
    several; two model answers if the human one is empty), in a random order. Rows with fewer than two non-empty
    answers (a failed generation) are left out."""
    raw = _require(
        raw, ("id", "prompt", "responses"), "pilot run", "run the pipeline on a few rows (Row limit 10-50) first."
    )
    limit = max(MIN_LABEL_ROWS, min(MAX_LABEL_ROWS, int(limit or DEFAULT_LABEL_ROWS)))
    columns = [c for c in ("id", "prompt", "responses", "target_language") if c in raw.column_names]
    picked: list[tuple[str, LabelTask]] = []
    for row in raw.select(columns).to_pylist():
        rid, prompt = _text(row.get("id")), _text(row.get("prompt"))
        responses = [_text(r) for r in row.get("responses") or []]
        filled = [i for i, r in enumerate(responses) if r.strip()]
        if not rid or not prompt.strip() or len(filled) < 2:
            continue
        rng = random.Random(f"{seed}:{rid}")
        if 0 in filled:
            pair = [0, rng.choice([i for i in filled if i != 0])]
        else:
            pair = rng.sample(filled, 2)
        rng.shuffle(pair)
        task = LabelTask(
            rid,
            prompt,
            (pair[0], pair[1]),
            (responses[pair[0]], responses[pair[1]]),
            _text(row.get("target_language")),
            len(responses),
        )
        picked.append((hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest(), task))
    picked.sort(key=lambda t: t[0])
    return [task for _, task in picked[:limit]]


def items_from_labels(labels: Iterable[Label]) -> list[CheckItem]:
    """The labelled rows with a preference (A, B or tie; "both bad" has none), the two shown answers each."""
    items = []
    for lab in labels:
        pref = lab.preference
        if pref is None:
            continue
        by_index = dict(zip(lab.shown, lab.answers))
        indices = tuple(sorted(by_index))
        items.append(CheckItem(lab.id, lab.prompt, tuple(by_index[i] for i in indices), indices, pref, lab.language))
    return items


def items_from_annotations(raw: pa.Table | None, annotations: pa.Table | None) -> list[CheckItem]:
    """Raw rows joined with annotations (an Argilla pull) on ``id``: every row where people chose (their majority
    preference, else their mean ratings), with all its non-empty answers. Rows more people discarded than answered
    are left out. Raises :class:`JudgeCheckError` when nothing matches."""
    raw = _require(
        raw,
        ("id", "prompt", "responses"),
        "raw results table",
        "give the raw.parquet written by `python -m pipeline generate`.",
    )
    annotations = _require(
        annotations,
        ("id", "human_preference"),
        "annotations table",
        "give the file written by `python -m pipeline argilla pull`.",
    )
    columns = [c for c in ("id", "prompt", "responses", "target_language") if c in raw.column_names]
    rows = {_text(r.get("id")): r for r in raw.select(columns).to_pylist()}
    items: list[CheckItem] = []
    matched = 0
    for ann in annotations.to_pylist():
        row = rows.get(_text(ann.get("id")))
        if row is None:
            continue
        matched += 1
        if int(agreement.as_number(ann.get("n_discarded")) or 0) > int(
            agreement.as_number(ann.get("n_annotators")) or 0
        ):
            continue
        human = agreement.human_choice(ann.get("human_preference"), ann.get("human_ratings"))
        responses = [_text(r) for r in row.get("responses") or []]
        indices = tuple(i for i, r in enumerate(responses) if r.strip())
        if human is None or len(indices) < 2 or (human != agreement.TIE and human not in indices):
            continue
        items.append(
            CheckItem(
                _text(row["id"]),
                _text(row.get("prompt")),
                tuple(responses[i] for i in indices),
                indices,
                int(human),
                _text(row.get("target_language")),
            )
        )
    if annotations.num_rows and not matched:
        raise JudgeCheckError(
            f"None of the {annotations.num_rows} annotation rows matches a raw row's id: pull the answers of the "
            "Argilla dataset made from this raw table (python -m pipeline argilla push/pull with this raw.parquet)."
        )
    return items


def check_items(items: Sequence[CheckItem], language: str = "", *, source: str = SOURCE_LABELS) -> None:
    """Raise :class:`JudgeCheckError` if the check cannot be trusted as asked: no rows, or rows of another language
    than the run's ``language`` (ISO 639-3; ``""``: only require one language)."""
    if not items:
        raise JudgeCheckError(NO_LABELS if source == SOURCE_LABELS else NO_ANNOTATED_ROWS)
    found = sorted({i.language for i in items if i.language})
    what = "labelled rows" if source == SOURCE_LABELS else "annotated rows"
    todo = (
        "label rows of a pilot run in that language (run the pipeline on a few rows of it first)"
        if source == SOURCE_LABELS
        else "pull the annotations of a dataset in that language"
    )
    if language:
        other = [i for i in items if i.language and i.language != language]
        if other:
            langs = ", ".join(languages.label(c, "no language") for c in sorted({i.language for i in other}))
            run_language = languages.label(language, "no language")
            raise JudgeCheckError(
                f"{len(other)} of the {len(items)} {what} are in {langs}, but the run is in "
                f"{run_language}: a judge's agreement in one language says little about another. "
                f"To check judges for {run_language}, {todo}."
            )
    elif len(found) > 1:
        raise JudgeCheckError(
            f"The {what} mix {len(found)} languages ({', '.join(languages.label(c, 'no language') for c in found)}): "
            "check one language at a time (the CLI's --language picks it)."
        )


# --------------------------------------------------------------------------------------------------------------
# Labels as annotations (for Export) and as a file (for the CLI)
# --------------------------------------------------------------------------------------------------------------
def _annotation_row(lab: Label) -> dict[str, Any]:
    n = max(int(lab.n_responses), max(lab.shown) + 1)
    row: dict[str, Any] = {
        "id": lab.id,
        "human_ratings": [None] * n,
        "improved_response": None,
        "judge_ratings": None,
        "judge_preference": None,
    }
    if lab.choice == CHOICE_BAD:  # a discard, as Argilla's: nobody answered, one person discarded it
        return {**row, "n_annotators": 0, "human_preference": None, "agreement": None, "n_discarded": 1}
    return {**row, "n_annotators": 1, "human_preference": lab.preference, "agreement": 1.0, "n_discarded": 0}


def labels_to_annotations(labels: Iterable[Label]) -> pa.Table:
    """Annotation rows (``schema.ANNOTATION_COLUMNS`` plus Argilla's extra columns) for the labels, one per row id
    (the latest label of an id wins): A/B/tie -> ``n_annotators=1`` and the preference (``-1`` = tie); "both
    bad" -> a discard (``n_annotators=0, n_discarded=1``), dropped by Export's discard rule."""
    latest = {lab.id: lab for lab in labels}
    return schema.annotations_table(_annotation_row(lab) for lab in latest.values())


def merge_annotations(
    existing: pa.Table | None, labelled: pa.Table, *, replace_ids: Iterable[str] = ()
) -> tuple[pa.Table, frozenset[str]]:
    """``existing`` annotations (e.g. an Argilla pull) plus the ``labelled`` rows whose id they do not have
    (people in Argilla are usually several: their rows win). ``replace_ids``: ids an earlier merge added from
    labels, replaced now. Returns the merged table and the ids added from ``labelled``."""
    drop = set(replace_ids)
    base = [] if existing is None else [r for r in existing.to_pylist() if _text(r.get("id")) not in drop]
    have = {_text(r.get("id")) for r in base}
    added = [r for r in labelled.to_pylist() if _text(r.get("id")) not in have]
    return schema.annotations_table([*base, *added]), frozenset(_text(r["id"]) for r in added)


def labels_table(labels: Iterable[Label]) -> pa.Table:
    """The labels as a table (``schema.LABEL_COLUMNS``), for a ``.jsonl``/``.parquet`` file the CLI reads back."""
    rows = [{**asdict(lab), "shown": list(lab.shown), "answers": list(lab.answers)} for lab in labels]
    return pa.Table.from_pylist(rows, schema=schema.LABEL_SCHEMA)


def labels_from_table(table: pa.Table, where: str = "the labels file") -> list[Label]:
    """Labels from a table written by :func:`labels_table`; a malformed row raises :class:`JudgeCheckError`."""
    _require(table, schema.LABEL_COLUMNS, "labels file", "save the labels from the app's judge check panel.")
    labels = []
    for number, row in enumerate(table.select(list(schema.LABEL_COLUMNS)).to_pylist(), 1):
        shown, answers = list(row.get("shown") or []), list(row.get("answers") or [])
        choice = _text(row.get("choice"))
        ok = (
            len(shown) == 2
            and len(answers) == 2
            and all(isinstance(x, int) and x >= 0 for x in shown)
            and shown[0] != shown[1]
            and choice in CHOICES
            and _text(row.get("id"))
        )
        if not ok:
            raise JudgeCheckError(
                f"{where}, row {number}: not a label (needs an id, two shown answers with their indices, and a "
                f"choice among {', '.join(CHOICES)}). Save the labels again from the app's judge check panel."
            )
        labels.append(
            Label(
                _text(row["id"]),
                _text(row.get("prompt")),
                (shown[0], shown[1]),
                (_text(answers[0]), _text(answers[1])),
                choice,
                _text(row.get("language")),
                int(row.get("n_responses") or max(shown) + 1),
            )
        )
    return labels
