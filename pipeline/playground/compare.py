"""Logic of the Playground tab (no Gradio here): prompts from the filtered data, side-by-side streaming of up to
three models, per-response statistics, votes and their tally.

``run_columns`` streams every configured column concurrently (one thread each, through
``pipeline.inference.stream_chat``) and yields snapshots of all columns, so a failing column shows its error while
the others go on.
"""

from __future__ import annotations

import csv
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import inference, langcheck
from pipeline.core.schema import ModelChoice
from pipeline.inference import Backend, GenParams, InferenceError

LETTERS: tuple[str, ...] = ("A", "B", "C")
VOTE_CHOICES: tuple[str, ...] = ("A better", "B better", "C better", "Tie", "All bad")
VOTE_FIELDS: tuple[str, ...] = (
    "time",
    "vote",
    "winner",
    "target_language",
    "prompt",
    "system_prompt",
    "model_a",
    "model_b",
    "model_c",
    "response_a",
    "response_b",
    "response_c",
)


# ---------------------------------------------------------------------------------------------------------------
# Data: target language and prompts
# ---------------------------------------------------------------------------------------------------------------
def _table(filtered: Any):
    return getattr(filtered, "table", filtered) if filtered is not None else None


def target_language(filtered: Any) -> tuple[str, str]:
    """(name, ISO 639-3 code) of the filtered set's language, ``("", "")`` when there is no data.

    Uses the set's own ``language``/``language_code`` attributes if it has them, else the most common value of
    the table's columns."""
    if filtered is None:
        return "", ""
    name = getattr(filtered, "language", None)
    code = getattr(filtered, "language_code", None)
    if isinstance(name, str) and isinstance(code, str) and code:
        return name, code
    table = _table(filtered)
    if table is None or table.num_rows == 0 or "language_code" not in table.column_names:
        return "", ""
    codes = Counter(table.column("language_code").to_pylist())
    code = codes.most_common(1)[0][0] or ""
    names = Counter(
        n for n, c in zip(table.column("language").to_pylist(), table.column("language_code").to_pylist()) if c == code
    )
    name = names.most_common(1)[0][0] if names else langcheck.language_name(code)
    return name or langcheck.language_name(code), code


def sample_row(filtered: Any, rng: random.Random | None = None) -> dict | None:
    """A random row of the filtered set as a dict (``prompt``, ``response``, ``language``, ...), or None."""
    table = _table(filtered)
    if table is None or table.num_rows == 0:
        return None
    rng = rng or random.Random()
    index = rng.randrange(table.num_rows)
    return {name: table.column(name)[index].as_py() for name in table.column_names}


def parse_seed(value: Any) -> int | None:
    """A seed from a UI number/text field: blank or invalid -> None (random)."""
    if value is None or value == "":
        return None
    try:
        seed = int(float(value))
    except (TypeError, ValueError):
        return None
    return seed if seed >= 0 else None


def make_backend(kind: str, model: str, base_url: str = "", provider: str = "auto") -> Backend | None:
    """The ``Backend`` of one column, or None when the column is left empty (no model and no URL)."""
    model = (model or "").strip()
    base_url = (base_url or "").strip()
    spec = inference.KINDS.get(kind) or inference.KINDS[inference.DEFAULT_KIND]
    if not model and not (spec.needs_url and not spec.needs_model and base_url):  # an endpoint serves one model
        return None
    return Backend(
        spec.name,
        model,
        base_url if spec.needs_url else "",
        (provider or "auto") if spec.has_provider else "auto",
    )


# ---------------------------------------------------------------------------------------------------------------
# Side-by-side streaming
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnState:
    letter: str
    label: str = ""  # the backend's label ("" = column not used)
    status: str = "idle"  # idle | waiting | streaming | done | error
    text: str = ""
    error: str = ""
    error_kind: str = ""
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    check: langcheck.LanguageCheck | None = None


@dataclass
class ColumnRequest:
    letter: str
    backend: Backend | None
    token: str | None = field(default=None, repr=False)  # per call only; never stored


def _check(text: str, target_code: str) -> langcheck.LanguageCheck | None:
    if not target_code or not text.strip():
        return None
    return langcheck.check(text, target_code)


def run_columns(
    requests: Sequence[ColumnRequest],
    messages: list[dict],
    params: GenParams,
    target_code: str = "",
    *,
    retry: inference.RetryPolicy = inference.INTERACTIVE_RETRY,
    timeout: float = 60.0,
    min_interval_s: float = 0.05,
) -> Iterator[list[ColumnState]]:
    """Stream all columns at once; yield the list of ``ColumnState`` (one per request, same order) whenever
    something changed (at most every ``min_interval_s`` while text flows), and a last snapshot when all are done.

    A column whose backend is None stays ``idle``. Errors (``InferenceError``) end only their own column; text that
    arrived before a stream broke is kept. Closing the iterator stops the streams (their connections close) and ends
    any wait for a retry or a slot at once."""
    states = {
        r.letter: ColumnState(r.letter, r.backend.label if r.backend else "", "waiting" if r.backend else "idle")
        for r in requests
    }
    order = [r.letter for r in requests]
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def worker(req: ColumnRequest) -> None:
        backend = req.backend
        assert backend is not None  # only columns with a model get a worker
        stream = inference.stream_chat(backend, messages, params, req.token, retry=retry, timeout=timeout, cancel=stop)
        try:
            for event in stream:
                if stop.is_set():
                    break
                events.put((req.letter, event))
        except InferenceError as exc:
            events.put((req.letter, exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not hang the other columns
            events.put((req.letter, InferenceError(f"{backend.label}: unexpected error: {exc}", kind="server")))
        finally:
            stream.close()
            events.put((req.letter, None))  # this column is finished

    threads = [
        threading.Thread(target=worker, args=(r,), daemon=True, name=f"playground-{r.letter}")
        for r in requests
        if r.backend is not None
    ]
    running = len(threads)
    for thread in threads:
        thread.start()
    try:
        yield [states[k] for k in order]
        last = time.monotonic()
        dirty = False
        while running:
            urgent = False
            try:
                letter, item = events.get(timeout=min_interval_s)
            except queue.Empty:
                letter = None
            if letter is not None:
                state = states[letter]
                dirty = True
                if item is None:
                    running -= 1
                    urgent = True
                    if state.status in ("waiting", "streaming"):  # ended without a final event
                        state = replace(state, status="done", check=_check(state.text, target_code))
                elif isinstance(item, InferenceError):
                    urgent = True
                    state = replace(
                        state,
                        status="error",
                        error=item.message,
                        error_kind=item.kind,
                        check=_check(state.text, target_code),
                    )
                elif item.kind == "delta":
                    urgent = state.status == "waiting"  # show the first token at once
                    state = replace(state, status="streaming", text=item.text)
                else:  # the final event
                    urgent = True
                    state = replace(
                        state,
                        status="done",
                        text=item.text,
                        ttft_s=item.ttft_s,
                        tokens_per_s=item.tokens_per_s,
                        completion_tokens=item.completion_tokens,
                        finish_reason=item.finish_reason,
                        check=_check(item.text, target_code),
                    )
                states[letter] = state
            now = time.monotonic()
            if dirty and (urgent or now - last >= min_interval_s):
                yield [states[k] for k in order]
                last = now
                dirty = False
        if dirty:
            yield [states[k] for k in order]
    finally:
        stop.set()


# ---------------------------------------------------------------------------------------------------------------
# Per-response statistics (plain text: shown in Markdown only after escaping)
# ---------------------------------------------------------------------------------------------------------------
def language_badge(check: langcheck.LanguageCheck | None, target_code: str) -> str:
    """E.g. ``✅ Dutch (nld) 98% · langid``, ``❌ English (eng) 91%, not Dutch``, ``➖ Yoruba: not checked (...)``."""
    if not target_code:
        return "➖ no target language (load data in Filter)"
    target_name = langcheck.language_name(target_code)
    if check is None:
        return "➖ nothing to check"
    if check.match is None:
        return f"➖ {target_name}: not checked ({check.reason})" if check.reason else "➖ nothing to check"
    confidence = f" {check.confidence:.0%}" if check.confidence is not None else ""
    by = f" · {check.detector}" if check.detector else ""
    if check.detected is None:  # the script check alone: wrong script
        return f"❌ not {target_name}: {check.reason}"
    name = langcheck.language_name(check.detected)
    if check.match:
        return f"✅ {name} ({check.detected}){confidence}{by}"
    return f"❌ {name} ({check.detected}){confidence}, not {target_name}{by}"


def stats_line(state: ColumnState, target_code: str) -> str:
    """One status line for a column: what is happening, or language badge, TTFT and speed."""
    if state.status == "idle":
        return "Not used: pick a model for this column."
    if state.status == "waiting":
        return "⏳ waiting for the first token…"
    if state.status == "streaming":
        return "✍️ generating…"
    parts = []
    if state.status == "error":
        parts.append(f"⚠️ {state.error}")
        if state.text:
            parts.append(language_badge(state.check, target_code))
        return " · ".join(parts)
    parts.append(language_badge(state.check, target_code))
    if state.ttft_s is not None:
        parts.append(f"first token {state.ttft_s:.2f} s")
    if state.tokens_per_s is not None:
        parts.append(f"{state.tokens_per_s:.1f} tokens/s")
    if state.completion_tokens:
        parts.append(f"{state.completion_tokens} tokens")
    if state.finish_reason == "length":
        parts.append("cut at max new tokens")
    if not state.text.strip():
        parts.append("empty reply")
    return " · ".join(parts)


# ---------------------------------------------------------------------------------------------------------------
# Votes
# ---------------------------------------------------------------------------------------------------------------
def record_vote(
    votes: list[dict],
    vote: str,
    *,
    prompt: str,
    system_prompt: str,
    labels: dict[str, str],
    responses: dict[str, str],
    target_code: str = "",
    run_id: str = "",
) -> dict:
    """Append one vote to ``votes`` (the session's list) and return it.

    ``labels``/``responses`` map column letters to the model label and reply ("" for unused columns). A second
    vote with the same ``run_id`` (same generation) replaces the first: one vote per prompt. Raises
    ``ValueError`` with a message for people: no vote chosen, nothing generated yet, or a vote for an empty column.
    """
    if vote not in VOTE_CHOICES:
        raise ValueError("Pick a vote first: A, B or C better, a tie, or all bad.")
    used = [k for k in LETTERS if labels.get(k) and (responses.get(k) or "").strip()]
    if not used:
        raise ValueError("Generate answers first, then vote.")
    winner = ""
    if vote.endswith(" better"):
        letter = vote.split()[0]
        if letter not in used:
            raise ValueError(f"Column {letter} has no answer to vote for.")
        winner = labels[letter]
    if vote == "Tie" and len(used) < 2:
        raise ValueError("A tie needs at least two answers.")
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "vote": vote,
        "winner": winner,
        "target_language": target_code,
        "prompt": prompt,
        "system_prompt": system_prompt,
        **{f"model_{k.lower()}": labels.get(k, "") if k in used else "" for k in LETTERS},
        **{f"response_{k.lower()}": responses.get(k, "") if k in used else "" for k in LETTERS},
        "run_id": run_id,
    }
    for i, previous in enumerate(votes):
        if run_id and previous.get("run_id") == run_id:
            votes[i] = entry
            return entry
    votes.append(entry)
    return entry


TALLY_COLUMNS = ("model", "shown", "wins", "ties", "all_bad", "losses", "win_rate")


def tally(votes: Sequence[dict]):
    """Per model: how often it was shown, won, tied, was judged bad with all others, lost; and its win rate.
    A ``pandas.DataFrame`` sorted by win rate then wins (best first)."""
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    for vote in votes:
        models = [vote.get(f"model_{k.lower()}", "") for k in LETTERS]
        models = [m for m in models if m]
        for model in dict.fromkeys(models):
            row = rows.setdefault(model, {"model": model, "shown": 0, "wins": 0, "ties": 0, "all_bad": 0, "losses": 0})
            row["shown"] += 1
            if vote["vote"] == "Tie":
                row["ties"] += 1
            elif vote["vote"] == "All bad":
                row["all_bad"] += 1
            elif vote.get("winner") == model:
                row["wins"] += 1
            else:
                row["losses"] += 1
    frame = pd.DataFrame(list(rows.values()), columns=list(TALLY_COLUMNS[:-1]))
    frame["win_rate"] = (frame["wins"] / frame["shown"]).round(2) if len(frame) else []
    return frame.sort_values(["win_rate", "wins"], ascending=False, ignore_index=True)


def write_votes_csv(votes: Sequence[dict], directory: str | Path) -> Path:
    """Write the votes as CSV (UTF-8, header ``VOTE_FIELDS``) in ``directory``; returns the file path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = directory / f"playground-votes-{stamp}.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(VOTE_FIELDS), extrasaction="ignore")
        writer.writeheader()
        for vote in votes:
            writer.writerow({k: vote.get(k, "") for k in VOTE_FIELDS})
    return path


# ---------------------------------------------------------------------------------------------------------------
# Hand-over to the Pipeline tab
# ---------------------------------------------------------------------------------------------------------------
def model_choice(backend: Backend, system_prompt: str) -> ModelChoice:
    """What "Use in pipeline" stores in ``session.model_choice`` (no key or token: those are typed per call)."""
    return ModelChoice(
        model=backend.model,
        backend=backend.kind,
        base_url=backend.base_url,
        provider=backend.provider if backend.spec.has_provider else "auto",
        system_prompt=system_prompt,
    )
