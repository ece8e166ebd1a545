"""Export, step 2: the TRL data formats. A :class:`~pipeline.export.rules.PreferencePair` becomes one example in
one of :data:`FORMATS`, all taken as they are by TRL's ``DPOTrainer`` and ``ORPOTrainer``:

- ``standard``: ``{"prompt": str, "chosen": str, "rejected": str}``
- ``conversational``: ``{"prompt": [system?, user], "chosen": [assistant], "rejected": [assistant]}``
- ``recipe`` (the data-is-better-together recipe's form): ``{"prompt": str, "chosen": [system?, user, assistant],
  "rejected": [system?, user, assistant]}``; TRL's ``maybe_extract_prompt`` turns it into the conversational form
  (it ignores a string prompt next to conversational completions).

:func:`check_trl_example` checks one example against the exact structure TRL expects; :func:`pairs_to_table` gives
the export table, whose Arrow schema per format is declared in :data:`pipeline.core.schema.EXPORT_SCHEMAS`.
Pure functions in the style of TRL's ``trl/data_utils.py``, each with a runnable example (``tests/test_doctests.py``
runs them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pyarrow as pa

from pipeline.core import schema
from pipeline.export.rules import ExportError, PreferencePair

FORMAT_STANDARD: Final = "standard"
FORMAT_CONVERSATIONAL: Final = "conversational"
FORMAT_RECIPE: Final = "recipe"
FORMATS: Final = (FORMAT_STANDARD, FORMAT_CONVERSATIONAL, FORMAT_RECIPE)
FORMAT_LABELS: Final = {
    FORMAT_STANDARD: "Standard: prompt, chosen and rejected as plain text",
    FORMAT_CONVERSATIONAL: "Conversational: prompt as user (and system) messages, chosen/rejected as one assistant "
    "message",
    FORMAT_RECIPE: "Recipe: chosen/rejected as full user + assistant conversations, plus the prompt as text",
}
# Columns written next to prompt/chosen/rejected (TRL ignores them; they let readers filter and audit).
EXTRA_COLUMNS: Final = tuple(schema.EXPORT_EXTRA_SCHEMA.names)


def _messages(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": content} for role, content in pairs]


def format_pair(pair: PreferencePair, fmt: str = FORMAT_STANDARD, include_system: bool = False) -> dict[str, Any]:
    """``prompt``/``chosen``/``rejected`` of one pair in format ``fmt`` (see :data:`FORMATS`).

    ``include_system`` adds the pipeline's system prompt (when not empty) as a ``system`` message in the
    conversational and recipe forms; the standard form has no place for it.

    Example:

    ```python
    >>> pair = PreferencePair(id="r1", prompt="Wat is de hoofdstad?", chosen="Amsterdam.", rejected="Parijs.",
    ...                       system_prompt="Antwoord kort.")
    >>> format_pair(pair, "standard")
    {'prompt': 'Wat is de hoofdstad?', 'chosen': 'Amsterdam.', 'rejected': 'Parijs.'}
    >>> format_pair(pair, "conversational")  # doctest: +NORMALIZE_WHITESPACE
    {'prompt': [{'role': 'user', 'content': 'Wat is de hoofdstad?'}],
     'chosen': [{'role': 'assistant', 'content': 'Amsterdam.'}],
     'rejected': [{'role': 'assistant', 'content': 'Parijs.'}]}
    >>> format_pair(pair, "recipe", include_system=True)["chosen"]  # doctest: +NORMALIZE_WHITESPACE
    [{'role': 'system', 'content': 'Antwoord kort.'}, {'role': 'user', 'content': 'Wat is de hoofdstad?'},
     {'role': 'assistant', 'content': 'Amsterdam.'}]

    ```
    """
    system = _messages(("system", pair.system_prompt)) if include_system and pair.system_prompt.strip() else []
    if fmt == FORMAT_STANDARD:
        return {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected}
    if fmt == FORMAT_CONVERSATIONAL:
        return {
            "prompt": system + _messages(("user", pair.prompt)),
            "chosen": _messages(("assistant", pair.chosen)),
            "rejected": _messages(("assistant", pair.rejected)),
        }
    if fmt == FORMAT_RECIPE:
        return {
            "prompt": pair.prompt,
            "chosen": system + _messages(("user", pair.prompt), ("assistant", pair.chosen)),
            "rejected": system + _messages(("user", pair.prompt), ("assistant", pair.rejected)),
        }
    raise ExportError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")


def is_conversational(example: Mapping[str, Any]) -> bool:
    """Whether an example is conversational, as TRL's ``trl.data_utils.is_conversational`` decides it.

    TRL looks at one of the keys ``prompt``, ``chosen``, ``rejected``, ``completion``, ``messages`` (whichever
    its set yields first) and answers True when it is a list whose first item is a dict with ``role`` and
    ``content``. Here every present key is looked at, and True means *all* of them are conversational, so the
    answer never depends on set order.

    Example:

    ```python
    >>> is_conversational({"prompt": [{"role": "user", "content": "Hoi"}],
    ...                    "chosen": [{"role": "assistant", "content": "Hallo!"}]})
    True
    >>> is_conversational({"prompt": "Hoi", "chosen": [{"role": "assistant", "content": "Hallo!"}]})
    False

    ```
    """
    keys = [k for k in ("prompt", "chosen", "rejected", "completion", "messages") if k in example]
    if not keys:
        return False
    for key in keys:
        value = example[key]
        if not (
            isinstance(value, list)
            and value
            and isinstance(value[0], dict)
            and "role" in value[0]
            and "content" in value[0]
        ):
            return False
    return True


def extract_prompt(example: Mapping[str, Any]) -> dict[str, Any]:
    """TRL's ``maybe_extract_prompt`` for a preference example, mirrored: a string prompt next to
    conversational ``chosen``/``rejected`` is ignored and the shared leading messages become the prompt.
    Used to check that the recipe form turns into the conversational one inside TRL.

    Example:

    ```python
    >>> extract_prompt({"prompt": "Hoi",
    ...                 "chosen": [{"role": "user", "content": "Hoi"}, {"role": "assistant", "content": "Hallo!"}],
    ...                 "rejected": [{"role": "user", "content": "Hoi"}, {"role": "assistant", "content": "Hi."}]})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'prompt': [{'role': 'user', 'content': 'Hoi'}], 'chosen': [{'role': 'assistant', 'content': 'Hallo!'}],
     'rejected': [{'role': 'assistant', 'content': 'Hi.'}]}

    ```
    """
    chosen, rejected = example["chosen"], example["rejected"]
    if "prompt" in example:
        if is_conversational({"chosen": chosen}) == is_conversational({"prompt": example["prompt"]}):
            return dict(example)
    idx = 0
    for idx in range(min(len(chosen), len(rejected))):
        if chosen[idx] != rejected[idx]:
            if chosen[idx - 1] == " ":
                idx -= 1
            break
    return {"prompt": chosen[:idx], "chosen": chosen[idx:], "rejected": rejected[idx:]}


def check_trl_example(example: Mapping[str, Any], fmt: str) -> list[str]:
    """Problems with one formatted example against what TRL's DPO/ORPO trainers expect ([] = none).

    Checks the keys, the types, the message roles (``system`` only first, then ``user``; completions a single
    ``assistant`` message; recipe conversations ``[system?, user, assistant]`` sharing their prompt part), that no
    text is empty and that chosen and rejected differ.

    Example:

    ```python
    >>> check_trl_example({"prompt": "Hoi", "chosen": "Hallo!", "rejected": "Hi."}, "standard")
    []
    >>> check_trl_example({"prompt": "Hoi", "chosen": "Hallo!", "rejected": "Hallo!"}, "standard")
    ['chosen and rejected are the same text']
    >>> check_trl_example({"prompt": [{"role": "user", "content": "Hoi"}], "chosen": "Hallo!", "rejected": "Hi."},
    ...                   "conversational")[0]
    'prompt, chosen and rejected must all be lists of messages'

    ```
    """
    problems: list[str] = []
    for key in ("prompt", "chosen", "rejected"):
        if key not in example:
            problems.append(f"missing key {key!r}")
    if problems:
        return problems

    def texts_of(value: Any, key: str) -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not value:
            problems.append(f"{key} must be a non-empty list of messages")
            return []
        out = []
        for m in value:
            if not isinstance(m, dict) or set(m) != {"role", "content"}:
                problems.append(f"{key}: each message must be a dict with exactly 'role' and 'content'")
                continue
            if not isinstance(m["content"], str):
                problems.append(f"{key}: message content must be text")
                continue
            out.append(m["content"])
        return out

    def roles(value: Any) -> list[str]:
        return [str(m.get("role") or "") for m in value if isinstance(m, dict)] if isinstance(value, list) else []

    prompt, chosen, rejected = example["prompt"], example["chosen"], example["rejected"]
    if fmt == FORMAT_STANDARD:
        for key in ("prompt", "chosen", "rejected"):
            if not isinstance(example[key], str):
                problems.append(f"{key} must be a string in the standard format")
        if is_conversational(example):
            problems.append("the standard format must not be conversational")
    elif fmt == FORMAT_CONVERSATIONAL:
        if not is_conversational(example):
            problems.append("prompt, chosen and rejected must all be lists of messages")
        pr = roles(prompt)
        if pr not in (["user"], ["system", "user"]):
            problems.append(f"prompt roles must be [user] or [system, user], got {pr}")
        for key, value in (("chosen", chosen), ("rejected", rejected)):
            if roles(value) != ["assistant"]:
                problems.append(f"{key} must be exactly one assistant message, got roles {roles(value)}")
    elif fmt == FORMAT_RECIPE:
        if not isinstance(prompt, str):
            problems.append("prompt must be a string in the recipe format")
        for key, value in (("chosen", chosen), ("rejected", rejected)):
            if roles(value) not in (["user", "assistant"], ["system", "user", "assistant"]):
                problems.append(f"{key} roles must be [system?, user, assistant], got {roles(value)}")
        if isinstance(chosen, list) and isinstance(rejected, list) and chosen[:-1] != rejected[:-1]:
            problems.append("chosen and rejected must share the same prompt messages")
        if isinstance(chosen, list) and len(chosen) >= 2 and isinstance(chosen[-2], dict):
            if isinstance(prompt, str) and chosen[-2].get("content") != prompt:
                problems.append("the user message must be the prompt")
        if not problems:
            extracted = extract_prompt(example)
            if not is_conversational(extracted) or roles(extracted["chosen"]) != ["assistant"]:
                problems.append("TRL's prompt extraction would not yield one assistant completion")
    else:
        problems.append(f"unknown format {fmt!r}")
        return problems
    for key, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        for text in texts_of(value, key):
            if not text.strip():
                problems.append(f"{key} has an empty text")
    c_texts, r_texts = texts_of(chosen, "chosen"), texts_of(rejected, "rejected")
    if c_texts and r_texts and c_texts[-1].strip() == r_texts[-1].strip():
        problems.append("chosen and rejected are the same text")
    return list(dict.fromkeys(problems))


def output_schema(fmt: str) -> pa.Schema:
    """The Arrow schema of an export table in format ``fmt`` (``schema.EXPORT_SCHEMAS``: prompt, chosen, rejected,
    then :data:`EXTRA_COLUMNS`).

    Example:

    ```python
    >>> output_schema("recipe").field("chosen").type
    ListType(list<item: struct<role: string, content: string>>)

    ```
    """
    if fmt not in schema.EXPORT_SCHEMAS:
        raise ExportError(f"Unknown format {fmt!r}; use one of {', '.join(FORMATS)}.")
    return schema.EXPORT_SCHEMAS[fmt]


def pairs_to_table(
    pairs: Sequence[PreferencePair], fmt: str = FORMAT_STANDARD, include_system: bool = False
) -> pa.Table:
    """The export table for ``pairs`` in format ``fmt``: prompt/chosen/rejected plus :data:`EXTRA_COLUMNS`.

    Example:

    ```python
    >>> pair = PreferencePair(id="r1", prompt="Hoi", chosen="Hallo!", rejected="Hi.", chosen_rating=5.0,
    ...                       rejected_rating=2.0, margin=3.0)
    >>> table = pairs_to_table([pair], "conversational")
    >>> table.column_names[:5], table.num_rows
    (['prompt', 'chosen', 'rejected', 'id', 'chosen_rating'], 1)
    >>> table.to_pylist()[0]["chosen"]
    [{'role': 'assistant', 'content': 'Hallo!'}]

    ```
    """
    schema_ = output_schema(fmt)
    rows = []
    for p in pairs:
        row = format_pair(p, fmt, include_system)
        for col in EXTRA_COLUMNS:
            row[col] = getattr(p, col)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema_)
