"""Structured output: one :class:`~pipeline.inference.backends.ResponseFormat`, each backend kind's dialect of
``response_format``, and the detection of a backend that refuses structured output.

Dialects, tried in the order of the kind's spec (``KindSpec.dialects``); a 400/422 to one moves that backend and
model (for the whole process) to the next, and once every dialect was refused the call raises kind
``schema_refused`` and the backend is asked no more (:func:`refused_schema`):

- ``json_schema``: OpenAI's ``{"type": "json_schema", "json_schema": {"name", "schema"}}``. For serverless calls
  ``huggingface_hub`` translates it into each provider's form; for a base URL it sends it as TGI's
  ``{"type": "json_object", "value": schema}``.
- ``json_object``: ``{"type": "json_object", "schema": schema}``: llama-cpp-python's and llama.cpp's servers follow
  the schema; vLLM and Ollama take it as JSON mode (valid JSON, schema not enforced: the judge validates).
- ``json``: TGI's ``{"type": "json", "value": schema}`` (dedicated Inference Endpoints).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pipeline.inference.backends import Backend, ResponseFormat
from pipeline.inference.errors import InferenceError
from pipeline.inference.kinds import KINDS

__all__ = [
    "SCHEMA_DIALECTS",
    "is_schema_refusal",
    "refused_schema",
    "response_format_payload",
    "schema_dialect",
    "schema_refused",
]

log = logging.getLogger(__name__)

SCHEMA_DIALECTS: Mapping[str, tuple[str, ...]] = MappingProxyType({k: s.dialects for k, s in KINDS.items()})

_DIALECT_AT: dict[tuple[str, ...], int] = {}  # (backend key..., model) -> index into its kind's dialects
_REFUSED: dict[tuple[str, ...], InferenceError] = {}  # backends that refused every dialect: no more asking
_DIALECT_LOCK = threading.Lock()


def _dialect_key(backend: Backend) -> tuple[str, ...]:
    return (*backend.key, backend.model)


def schema_dialect(backend: Backend) -> str:
    """The dialect ``backend`` is asked in now (the first one, or the one that a refusal moved it to)."""
    dialects = backend.spec.dialects
    with _DIALECT_LOCK:
        return dialects[min(_DIALECT_AT.get(_dialect_key(backend), 0), len(dialects) - 1)]


def _next_dialect(backend: Backend, refused: str) -> bool:
    """After ``refused`` was refused, move ``backend`` to its next dialect; False when there is none left."""
    dialects = backend.spec.dialects
    with _DIALECT_LOCK:
        at = min(_DIALECT_AT.get(_dialect_key(backend), 0), len(dialects) - 1)
        if dialects[at] != refused:  # another call moved it already
            return True
        if at + 1 >= len(dialects):
            return False  # the caller records the refusal (schema_refused)
        _DIALECT_AT[_dialect_key(backend)] = at + 1
        log.info("%s refused response_format %r; trying %r", backend.label, refused, dialects[at + 1])
        return True


def response_format_payload(backend: Backend, fmt: ResponseFormat, dialect: str | None = None) -> dict[str, Any]:
    """``fmt`` in ``dialect`` (default: the backend's current one), as sent in ``response_format``."""
    dialect = dialect or schema_dialect(backend)
    if dialect == "json":
        return {"type": "json", "value": fmt.schema}
    if dialect == "json_object":
        return {"type": "json_object", "schema": fmt.schema}
    return {"type": "json_schema", "json_schema": {"name": fmt.name, "schema": fmt.schema}}


def is_schema_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is a backend refusing structured output (every dialect got a 400/422)."""
    return isinstance(exc, InferenceError) and exc.kind == "schema_refused"


def schema_refused(error: InferenceError, backend: Backend, dialect: str) -> InferenceError | None:
    """For a structured call that failed with ``error`` in ``dialect``: None to try the backend's next dialect,
    else the error to raise (kind ``schema_refused`` once every dialect got a 400/422; ``error`` itself when it
    is no refusal of the schema)."""
    if error.status not in (400, 422) or error.kind != "bad_request":
        return error
    if _next_dialect(backend, dialect):
        return None
    refusal = error.with_message(
        f"{backend.label}: structured output (a JSON schema in response_format) was refused ({error.status}). "
        f"{error.message}",
        kind="schema_refused",
    )
    with _DIALECT_LOCK:
        _REFUSED.setdefault(_dialect_key(backend), refusal)
    return refusal


def refused_schema(backend: Backend) -> InferenceError | None:
    """The refusal of a backend that refused structured output in every dialect (asked no more), else None."""
    with _DIALECT_LOCK:
        return _REFUSED.get(_dialect_key(backend))
