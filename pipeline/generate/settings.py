"""Run settings, the plan of a run and its estimate (step 3, Pipeline).

Owns :class:`RunSettings` (everything that decides what a run produces, plus its limits; never a token), with every
default in one place (:data:`DEFAULTS`) and :meth:`RunSettings.from_mapping` to build it from a tab's fields or the
CLI's flags and config file; :class:`Plan` / :func:`plan_run` (what a run will do, counted before it starts, for
the estimate shown to the user); and :func:`estimate_tokens`. Pure: no network, no Gradio, no files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import pyarrow as pa

from pipeline import judge as judge_mod
from pipeline.core import schema
from pipeline.core.credentials import public_url
from pipeline.core.errors import RunError
from pipeline.inference import Backend, GenParams, backend_from, estimate_tokens

__all__ = [
    "DEFAULTS",
    "Plan",
    "RunSettings",
    "judge_backend_from",
    "plan_run",
    "replace_fields",
    "scope_rows",
]


_GEN = GenParams()  # the sampling defaults, owned by pipeline.inference (the Playground uses the same)

DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {  # add a new setting here and as a field below
        "system_prompt": "",
        "aspect": judge_mod.DEFAULT_ASPECT,
        "max_new_tokens": _GEN.max_new_tokens,
        "temperature": _GEN.temperature,
        "top_p": _GEN.top_p,
        "seed": None,
        "judge_max_new_tokens": None,
        "judge_temperature": 0.1,
        "judge_mode": judge_mod.DEFAULT_MODE,  # "ratings" (UltraFeedback 1-5 per text) | "pairwise" (A/B/tie)
        "judge_order": judge_mod.DEFAULT_ORDER,  # "random" (one call, order seeded by the row id) | "both" (two calls)
        "judge_structured": True,  # ask the judge for JSON (falls back to text per backend when refused)
        "concurrency": 8,
        "max_rows": None,
        "max_tokens": None,
        "max_wait_s": 600.0,  # seconds one call may wait in total for a throttling provider before the run pauses
    }
)
"""Every default of a run, in one place: the dataclass below, the Pipeline tab's fields and the CLI's help use it."""


def _backend_dict(backend: Any) -> dict:
    return {
        "kind": getattr(backend, "kind", ""),
        "model": getattr(backend, "model", ""),
        "base_url": public_url(getattr(backend, "base_url", "") or ""),
        "provider": getattr(backend, "provider", "auto") or "auto",
    }


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _int_or_none(value: Any, name: str, *, zero_is_none: bool = False) -> int | None:
    """An integer field of a mapping: blank -> None; ``zero_is_none`` for "0 means no limit" fields."""
    if _blank(value):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RunError(f"{name.replace('_', ' ').capitalize()} must be a whole number, not {value!r}.") from None
    if number != int(number):
        raise RunError(f"{name.replace('_', ' ').capitalize()} must be a whole number, not {value!r}.")
    if zero_is_none and number <= 0:
        return None
    return int(number)


def _float(value: Any, name: str) -> float | None:
    if _blank(value):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise RunError(f"{name.replace('_', ' ').capitalize()} must be a number, not {value!r}.") from None


_NO_LIMIT_IF_ZERO = ("max_rows", "max_tokens")


def _coerce(value: Any, name: str, annotation: str) -> Any:
    """A mapping value as the field's type (from its annotation): bool, float, int or str."""
    if annotation.startswith("bool"):
        return bool(value)
    if annotation.startswith("float"):
        return _float(value, name)
    if annotation.startswith("int"):
        return _int_or_none(value, name, zero_is_none=name in _NO_LIMIT_IF_ZERO)
    return str(value).strip()


def judge_backend_from(spec: Any, first_generator: Backend) -> Backend:
    """The judge's backend: what ``spec`` gives, the rest filled in from the first generator (one rule for the app
    and the CLI): no model and no base URL -> the first generator, backend and all (an empty judge box means "the
    first generator", wherever it runs); no model -> the generator's model; no kind -> the generator's kind; same
    kind and no base URL or provider -> the generator's."""
    if isinstance(spec, Backend):
        spec = {"kind": spec.kind, "model": spec.model, "base_url": spec.base_url, "provider": spec.provider}
    spec = {k: v for k, v in dict(spec or {}).items() if not _blank(v)}
    if not spec.get("model") and not spec.get("base_url"):
        return first_generator
    kind = spec.get("kind") or spec.get("backend") or first_generator.kind
    same = kind == first_generator.kind
    return backend_from(
        {
            "kind": kind,
            "model": spec.get("model") or first_generator.model,
            "base_url": spec.get("base_url") or (first_generator.base_url if same else ""),
            "provider": spec.get("provider") or (first_generator.provider if same else "auto"),
        }
    )


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides what a run produces, plus its limits. Holds no token.

    Build it with :meth:`from_mapping` from a tab's fields or the CLI's flags; every default is in :data:`DEFAULTS`.
    """

    generators: tuple[Backend, ...]  # one or several generator models
    judge: Backend  # the judge model (may differ from the generators)
    system_prompt: str = DEFAULTS["system_prompt"]
    aspect: str = DEFAULTS["aspect"]
    max_new_tokens: int = DEFAULTS["max_new_tokens"]  # per generated response
    temperature: float = DEFAULTS["temperature"]
    top_p: float = DEFAULTS["top_p"]
    seed: int | None = DEFAULTS["seed"]
    judge_max_new_tokens: int | None = DEFAULTS["judge_max_new_tokens"]  # None: judge.default_max_new_tokens(n)
    judge_temperature: float = DEFAULTS["judge_temperature"]
    judge_mode: str = DEFAULTS["judge_mode"]  # judge.JUDGE_MODES
    judge_order: str = DEFAULTS["judge_order"]  # judge.ORDER_POLICIES
    judge_structured: bool = DEFAULTS["judge_structured"]
    concurrency: int = DEFAULTS["concurrency"]  # calls in flight at once, across generation and judging
    max_rows: int | None = DEFAULTS["max_rows"]  # use only the first max_rows rows of the input
    max_tokens: int | None = DEFAULTS["max_tokens"]  # token budget (prompt + completion) of this run; None: none
    max_wait_s: float = DEFAULTS["max_wait_s"]  # longest total wait of one call for a provider's rate limit

    @classmethod
    def from_mapping(cls, fields: Mapping[str, Any]) -> RunSettings:
        r"""Settings from a mapping of field names (the Pipeline tab's fields, the CLI's flags and config file).

        ``generators``: a list of Backends or mappings (``kind``/``backend``, ``model``, ``base_url``,
        ``provider``), or ``models`` (ids, a list or one per line/comma) with ``kind``, ``base_url``, ``provider``
        shared. ``judge``: a Backend or mapping, or ``judge_model`` / ``judge_kind`` / ``judge_base_url`` /
        ``judge_provider``; what is missing comes from the first generator (:func:`judge_backend_from`). Blank
        values take the default; ``max_rows`` and ``max_tokens`` of 0 mean "no limit". Unknown keys are ignored.
        Raises :class:`RunError` or ``InferenceError`` with a message for the user.

        >>> s = RunSettings.from_mapping({"models": "m1\nm2", "base_url": "http://localhost:8000/v1", "max_rows": 0})
        >>> [g.model for g in s.generators], s.judge.model, s.judge.kind, s.max_rows, s.temperature
        (['m1', 'm2'], 'm1', 'openai', None, 0.7)
        """
        f = dict(fields)
        gens = f.get("generators")
        if gens:
            generators = tuple(backend_from(g) for g in gens)
        else:
            models = f.get("models") or f.get("model") or []
            if isinstance(models, str):
                models = re.split(r"[\n,]+", models)
            ids = list(dict.fromkeys(m.strip() for m in models if m and m.strip()))
            if not ids:
                raise RunError("Give at least one generator model id.")
            shared = {
                "kind": f.get("kind") or f.get("backend"),
                "base_url": f.get("base_url"),
                "provider": f.get("provider"),
            }
            generators = tuple(backend_from({**shared, "model": m}) for m in ids)
        judge_spec = f.get("judge")
        if not judge_spec or isinstance(judge_spec, str):
            judge_spec = {
                "model": judge_spec or f.get("judge_model"),
                "kind": f.get("judge_kind") or f.get("judge_backend"),
                "base_url": f.get("judge_base_url"),
                "provider": f.get("judge_provider"),
            }
        kwargs: dict[str, Any] = {"generators": generators, "judge": judge_backend_from(judge_spec, generators[0])}
        for fld in dataclasses.fields(cls):
            if fld.name in kwargs or fld.name not in f or _blank(f[fld.name]):
                continue  # the dataclass default (DEFAULTS) applies
            kwargs[fld.name] = _coerce(f[fld.name], fld.name, str(fld.type))
        return cls(**kwargs)

    def __post_init__(self) -> None:
        if not self.generators:
            raise RunError("Choose at least one generator model.")
        models = [getattr(g, "model", "") for g in self.generators]
        if any(not m.strip() for m in models) or not getattr(self.judge, "model", "").strip():
            raise RunError("Every generator and the judge need a model id.")
        if len(set(models)) != len(models):
            raise RunError("The same generator model is listed twice; list each model once.")
        if schema.HUMAN in models:
            raise RunError(f"'{schema.HUMAN}' is reserved for the human responses; it cannot be a model id.")
        if self.aspect not in judge_mod.ASPECTS:
            raise RunError(f"Unknown aspect {self.aspect!r}; choose one of {', '.join(judge_mod.ASPECTS)}.")
        if self.judge_mode not in judge_mod.JUDGE_MODES:
            raise RunError(f"Unknown judge mode {self.judge_mode!r}; choose one of {', '.join(judge_mod.JUDGE_MODES)}.")
        if self.judge_order not in judge_mod.ORDER_POLICIES:
            raise RunError(
                f"Unknown judge order {self.judge_order!r}; choose one of {', '.join(judge_mod.ORDER_POLICIES)}."
            )
        if not 1 <= int(self.concurrency) <= 256:
            raise RunError("Concurrency must be between 1 and 256.")
        if self.max_new_tokens < 1:
            raise RunError("Max new tokens must be at least 1.")
        if self.max_rows is not None and self.max_rows < 1:
            raise RunError("The row limit must be at least 1 (or empty for no limit).")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise RunError("The token budget must be at least 1 (or empty for no budget).")
        if not 1 <= float(self.max_wait_s) <= 86_400:
            raise RunError("The longest wait for a provider must be between 1 and 86400 seconds.")

    @property
    def sources(self) -> list[str]:
        """``response_sources`` of every row: ``"human"`` then each generator's model id."""
        return [schema.HUMAN, *(g.model for g in self.generators)]

    @property
    def n_texts(self) -> int:
        return 1 + len(self.generators)

    @property
    def judge_tokens(self) -> int:
        shown = 2 if self.judge_mode == "pairwise" else self.n_texts  # texts in one judge call
        return self.judge_max_new_tokens or judge_mod.default_max_new_tokens(shown)

    @property
    def judge_calls_per_row(self) -> int:
        return judge_mod.judge_calls_per_row(self.n_texts, self.judge_mode, self.judge_order)

    def describe(self) -> dict:
        """A JSON-able description for checkpoints, cards and ``raw_meta`` (no token anywhere)."""
        return {
            "generators": [_backend_dict(g) for g in self.generators],
            "judge": _backend_dict(self.judge),
            "system_prompt": self.system_prompt,
            "aspect": self.aspect,
            "generation": {
                "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature,
                "top_p": self.top_p,
                "seed": self.seed,
            },
            "judge_generation": {"max_new_tokens": self.judge_tokens, "temperature": self.judge_temperature},
            "judge_mode": self.judge_mode,
            "judge_order": self.judge_order,
            "judge_structured": self.judge_structured,
            "concurrency": self.concurrency,
            "max_rows": self.max_rows,
            "max_tokens": self.max_tokens,
            "max_wait_s": self.max_wait_s,
        }

    def fingerprint(self) -> str:
        """A short hash of what decides the *content* of rows (models, prompts, judge, sampling), not the limits.

        Base URLs are left out on purpose: the same model behind a moved endpoint or a restarted local server is
        the same run.
        """
        d = self.describe()
        key = {
            "generators": [(g["kind"], g["model"], g["provider"]) for g in d["generators"]],
            "judge": (d["judge"]["kind"], d["judge"]["model"], d["judge"]["provider"]),
            "system_prompt": d["system_prompt"],
            "aspect": d["aspect"],
            "generation": d["generation"],
            "judge_generation": d["judge_generation"],
        }
        for name in ("judge_mode", "judge_order"):  # only when not the default: older checkpoints keep resuming
            if d[name] != DEFAULTS[name]:
                key[name] = d[name]
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]

    def gen_params(self) -> GenParams:
        return GenParams(
            max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p, seed=self.seed
        )

    def judge_params(self) -> GenParams:
        return GenParams(
            max_new_tokens=self.judge_tokens, temperature=self.judge_temperature, top_p=1.0, seed=self.seed
        )


@dataclass(frozen=True)
class Plan:
    """What a run will do, computed before it starts (for the estimate shown to the user)."""

    total: int  # rows in scope (the input, cut to max_rows)
    already_ok: int  # rows in scope already ok in the checkpoint (never re-run)
    to_run: int  # rows this run will process
    retried: int  # of which: rows that failed before
    generation_calls: int
    judge_calls: int
    est_tokens: int  # upper bound: prompts + max_new_tokens for every call
    budget: int | None

    @property
    def calls(self) -> int:
        return self.generation_calls + self.judge_calls

    def summary(self) -> str:
        """One short paragraph for the UI and the CLI."""
        if self.total == 0:
            return "The filtered set has no rows: filter a language with data first."
        if self.to_run == 0:
            return f"All {self.total} rows are already done; nothing to run."
        parts = [f"{self.to_run} of {self.total} rows to run"]
        if self.already_ok:
            parts.append(f"{self.already_ok} already done")
        if self.retried:
            parts.append(f"{self.retried} retried after a failure")
        text = (
            ", ".join(parts)
            + f": about {self.calls} calls ({self.generation_calls} generations + {self.judge_calls} judge calls),"
            + f" at most ~{self.est_tokens:,} tokens."
        )
        if self.budget is not None and self.est_tokens > self.budget:
            share = max(0, int(self.to_run * self.budget / max(1, self.est_tokens)))
            text += f" The token budget ({self.budget:,}) may stop the run after roughly {share} rows or more."
        return text


def _iter_rows(rows: Any) -> Iterator[dict]:
    """Rows of the filtered set as dicts, from a pyarrow table, a ``FilteredSet`` (``.table``) or dicts."""
    table = getattr(rows, "table", rows)
    if isinstance(table, pa.Table):
        for batch in table.to_batches(max_chunksize=1024):
            yield from batch.to_pylist()
    else:
        yield from table


def scope_rows(rows: Any, settings: RunSettings) -> Iterator[tuple[int, dict]]:
    """The rows a run covers, in input order: cut to ``max_rows``, each with its content id, duplicates once."""
    seen: set[str] = set()
    for index, row in enumerate(_iter_rows(rows)):
        if settings.max_rows is not None and index >= settings.max_rows:
            return
        rid = row.get("id") or schema.row_id(row.get("prompt", ""), row.get("response", ""))
        if rid in seen:  # a duplicate (prompt, response) pair: same id, one row
            continue
        seen.add(rid)
        yield index, {**row, "id": rid}


def plan_run(rows: Any, settings: RunSettings, statuses: Mapping[str, str] | None = None) -> Plan:
    """Count what a run of ``rows`` with ``settings`` would do, given ``statuses`` (row id -> status) of the rows a
    checkpoint already holds (``Checkpoint.statuses()``; none for a fresh run)."""
    statuses = statuses or {}
    total = already = to_run = retried = gen_calls = judge_calls = tokens = 0
    sys_tokens = estimate_tokens(settings.system_prompt) if settings.system_prompt else 0
    overhead = judge_mod.prompt_overhead(settings.aspect, settings.n_texts)
    n_gen = len(settings.generators)
    for _, row in scope_rows(rows, settings):
        total += 1
        prior = statuses.get(row["id"])
        if prior == schema.STATUS_OK:
            already += 1
            continue
        to_run += 1
        if prior is not None:
            retried += 1
        prompt_t = estimate_tokens(row.get("prompt", ""))
        human_t = estimate_tokens(row.get("response", ""))
        # A rough upper bound for failed rows too (their cheaper resume is not counted here).
        gen_calls += n_gen
        judge_calls += settings.judge_calls_per_row
        tokens += n_gen * (sys_tokens + prompt_t + settings.max_new_tokens)
        per_order = 2 if settings.judge_order == "both" else 1
        if settings.judge_mode == "pairwise":  # one call per generator: the human answer against its answer
            tokens += (
                per_order * n_gen * (overhead + prompt_t + human_t + settings.max_new_tokens + settings.judge_tokens)
            )
        else:
            tokens += per_order * (
                overhead + prompt_t + human_t + n_gen * settings.max_new_tokens + settings.judge_tokens
            )
    return Plan(total, already, to_run, retried, gen_calls, judge_calls, tokens, settings.max_tokens)


def replace_fields(settings: RunSettings, **changes: Any) -> RunSettings:
    """A copy of ``settings`` with ``changes`` (validated again)."""
    return dataclasses.replace(settings, **changes)
