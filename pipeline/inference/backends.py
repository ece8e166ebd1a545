"""The data types of inference: where a model runs (:class:`Backend`, with its kind's spec from the kind table),
what to ask it (:class:`GenParams`, :class:`ResponseFormat`, the messages) and what comes back
(:class:`ChatResult`, :class:`StreamEvent`).

Owns building a validated backend from form fields, CLI flags or a config mapping (:func:`backend_from`, one
rule for the app, the CLI and the judge check), checking a conversation before it is sent
(:func:`check_messages`), and the one token estimate of the app (:func:`estimate_tokens`). Validation raises
:class:`~pipeline.inference.errors.InferenceError` (kind ``bad_request``) with a message that says what to fix,
and checks a typed URL against private addresses where that guard is on (``pipeline.core.netguard``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlparse

from pipeline.core import netguard
from pipeline.inference.errors import InferenceError
from pipeline.inference.kinds import (
    BACKEND_KINDS,
    DEFAULT_KIND,
    KINDS,
    PROVIDERS,
    BackendKind,
    KindSpec,
    display_url,
    norm_url,
)

__all__ = [
    "SUGGESTED_MODELS",
    "Backend",
    "ChatResult",
    "GenParams",
    "ResponseFormat",
    "StreamEvent",
    "backend_from",
    "build_messages",
    "check_messages",
    "estimate_tokens",
]

# Popular instruction models that serve many languages on Inference Providers (suggestions, not a whitelist).
SUGGESTED_MODELS: tuple[str, ...] = (
    "meta-llama/Llama-3.3-70B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "Qwen/Qwen3-32B",
    "google/gemma-3-27b-it",
    "CohereLabs/aya-expanse-32b",
    "CohereLabs/aya-expanse-8b",
    "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
    "deepseek-ai/DeepSeek-V3-0324",
    "openai/gpt-oss-120b",
    "HuggingFaceTB/SmolLM3-3B",
)


@dataclass(frozen=True)
class Backend:
    """Where a model runs. ``base_url`` for kinds that need a URL; ``provider`` for kinds that have one."""

    kind: BackendKind
    model: str
    base_url: str = ""
    provider: str = "auto"

    @property
    def spec(self) -> KindSpec:
        """This backend's kind in the kind table (``pipeline.inference.kinds.KINDS``)."""
        return KINDS[self.kind]

    @property
    def label(self) -> str:
        """Short human description, e.g. ``Qwen/Qwen2.5-72B-Instruct via HF Inference Providers (auto)``."""
        spec = self.spec
        return spec.describe.format(
            model=self.model or spec.unnamed_model, provider=self.provider or "auto", url=display_url(self.base_url)
        )

    @property
    def key(self) -> tuple[str, ...]:
        """Identity used for the concurrency limit: one server (or one serverless model/provider)."""
        if self.spec.needs_url:
            return (self.kind, norm_url(self.base_url))
        return (self.kind, self.provider or "auto", self.model)

    def validate(self) -> None:
        """Raise ``InferenceError`` (kind ``bad_request``) if the backend is not usable as given."""
        spec = KINDS.get(self.kind)
        if spec is None:
            raise InferenceError(
                f"Unknown backend {self.kind!r}: pick one of {', '.join(BACKEND_KINDS)}.", kind="bad_request"
            )
        if spec.needs_model and not self.model.strip():
            raise InferenceError(
                "No model given: type a model id (e.g. Qwen/Qwen2.5-72B-Instruct).", kind="bad_request"
            )
        if spec.has_provider and self.provider and self.provider not in PROVIDERS:
            raise InferenceError(
                f"Unknown inference provider {self.provider!r}: pick one of {', '.join(PROVIDERS)}.",
                kind="bad_request",
            )
        if spec.needs_url:
            parsed = urlparse(self.base_url.strip())
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise InferenceError(
                    f"{spec.label}: {self.base_url!r} is not a URL. Give the server's base URL, "
                    "e.g. http://localhost:8000/v1 or https://xyz.endpoints.huggingface.cloud.",
                    kind="bad_request",
                )
            try:
                netguard.check_url(self.base_url, what=f"{spec.label} {display_url(self.base_url)}")
            except netguard.AddressRefused as exc:
                raise InferenceError(exc.message, kind="bad_request") from None


@dataclass(frozen=True)
class ResponseFormat:
    """A request for JSON that fits a JSON schema, independent of the backend: each backend gets it in its own
    dialect (see ``pipeline.inference.dialects``). The schema is kept as JSON text so that ``GenParams`` stays
    hashable, in the caller's key order (grammar engines such as llama.cpp emit properties in that order)."""

    name: str
    schema_json: str

    @classmethod
    def of(cls, name: str, schema: dict) -> ResponseFormat:
        return cls(name, json.dumps(schema, ensure_ascii=False))

    @property
    def schema(self) -> dict:
        return json.loads(self.schema_json)


@dataclass(frozen=True)
class GenParams:
    max_new_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.95
    seed: int | None = None
    response_format: ResponseFormat | None = None  # ask for JSON that fits a schema (structured output)


@dataclass(frozen=True)
class ChatResult:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    elapsed_s: float
    attempts: int = 1


@dataclass(frozen=True)
class StreamEvent:
    """``kind="delta"``: ``delta`` is new text, ``text`` all text so far. ``kind="done"``: the final event, with
    ``ttft_s`` (time to first token, from the call), ``tokens_per_s`` (decode speed after the first token),
    ``completion_tokens`` and ``finish_reason`` (``"length"`` = cut by max new tokens)."""

    kind: Literal["delta", "done"]
    delta: str = ""
    text: str = ""
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    elapsed_s: float = 0.0


def check_messages(messages: list[dict]) -> None:
    """Raise ``InferenceError`` (``bad_request``) for an empty conversation or an empty last user message."""
    if not messages:
        raise InferenceError(
            "Nothing to send: the prompt is empty. Type a prompt or pick one from the data.", kind="bad_request"
        )
    for message in messages:
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise InferenceError("Each message needs a 'role' and a 'content'.", kind="bad_request")
    last_user = next((m for m in reversed(messages) if m["role"] == "user"), None)
    if last_user is None or not str(last_user["content"] or "").strip():
        raise InferenceError(
            "Nothing to send: the prompt is empty. Type a prompt or pick one from the data.", kind="bad_request"
        )


def build_messages(prompt: str, system_prompt: str = "") -> list[dict]:
    """``[{"role": "system", ...}, {"role": "user", ...}]`` (no system message when it is blank)."""
    messages = []
    if system_prompt and system_prompt.strip():
        messages.append({"role": "system", "content": system_prompt.strip()})
    messages.append({"role": "user", "content": prompt})
    return messages


def estimate_tokens(text: str) -> int:
    """A conservative token estimate (about 3 UTF-8 bytes per token; non-Latin scripts use more tokens per char).

    >>> estimate_tokens("hello world")
    4
    """
    return len(text.encode("utf-8")) // 3 + 1


def backend_from(spec: Any, *, kind: str | None = None) -> Backend:
    """A validated :class:`Backend` from a Backend or a mapping with ``model`` and optionally ``kind`` (or
    ``backend``), ``base_url`` and ``provider``. Without a kind: ``openai`` if a base URL is given, else
    ``serverless``. Raises :class:`InferenceError` with a message for the user."""
    if isinstance(spec, Backend):
        backend = spec
    else:
        spec = dict(spec or {})
        base_url = str(spec.get("base_url") or "").strip()
        kind = spec.get("kind") or spec.get("backend") or kind or ("openai" if base_url else DEFAULT_KIND)
        backend = Backend(
            cast(BackendKind, kind), str(spec.get("model") or "").strip(), base_url, spec.get("provider") or "auto"
        )
    backend.validate()
    return backend
