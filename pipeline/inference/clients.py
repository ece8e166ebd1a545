"""The HTTP clients of inference and what goes into a request: one function per client, so every client is built
(and guarded) in one place.

Owns :func:`async_client` (``huggingface_hub.AsyncInferenceClient``, for ``pipeline.inference.chat``),
:func:`sync_client` (``InferenceClient``, for ``pipeline.inference.stream``), :func:`models_client` (a plain
``httpx`` client for :func:`list_models`), the arguments they get (:func:`client_kwargs`: which credential goes
where, by the kind table; never the machine's own token to a URL the user typed), the request body
(:func:`request_kwargs`, with ``response_format`` in the backend's dialect) and reading a reply
(:func:`parse_output`). On a public deployment every request these clients send is checked against private
addresses and pinned to the checked address (``pipeline.core.netguard``'s hooks and transport, installed on
import).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import httpx2
from huggingface_hub import AsyncInferenceClient, InferenceClient

from pipeline.core import netguard
from pipeline.inference.backends import Backend, GenParams
from pipeline.inference.dialects import refused_schema, response_format_payload
from pipeline.inference.errors import InferenceError
from pipeline.inference.kinds import norm_url

__all__ = [
    "async_client",
    "client_kwargs",
    "list_models",
    "models_client",
    "parse_output",
    "request_kwargs",
    "sync_client",
]

# When the app serves the public, every request huggingface_hub's clients send is checked against private addresses
# and connects to the checked address (pipeline.core.netguard); Backend.validate checks a typed URL before any work.
# Locally both allow everything.
netguard.install_hf_guard()

_NO_KEY = "no-key"  # placeholder so huggingface_hub does not fall back to the machine's token; header is dropped


def _is_loopback(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def client_kwargs(backend: Backend, token: str | None, timeout: float) -> dict[str, Any]:
    """Arguments for ``(Async)InferenceClient``. Never sends a machine token to a URL the user typed; a kind that
    needs the user's token refuses to run without it; a URL that gets the HF token must be https (or loopback)."""
    backend.validate()
    spec = backend.spec
    if spec.needs_token and not token:
        raise InferenceError(
            f"{backend.label}: serverless inference runs on your Hugging Face account and needs its token: sign "
            "in with Hugging Face in the app, or set HF_TOKEN for the CLI. Or use a local OpenAI-compatible server.",
            kind="auth",
        )
    if not spec.needs_url:
        return {"provider": backend.provider or "auto", "api_key": token, "timeout": timeout}
    kwargs: dict[str, Any] = {"base_url": norm_url(backend.base_url), "timeout": timeout}
    if (
        spec.sends_hf_token
        and token
        and not (backend.base_url.startswith("https://") or _is_loopback(backend.base_url))
    ):
        raise InferenceError(
            f"{backend.label}: endpoint URLs must start with https:// (your token would travel unencrypted).",
            kind="bad_request",
        )
    if token:
        kwargs["api_key"] = token
    else:
        kwargs["api_key"] = _NO_KEY
        kwargs["headers"] = {"authorization": None}  # dropped by huggingface_hub: no Authorization header at all
    return kwargs


def async_client(backend: Backend, token: str | None, timeout: float) -> AsyncInferenceClient:
    """The async client of one backend (one connection pool; ``pipeline.inference.chat.AsyncChat`` keeps it)."""
    return AsyncInferenceClient(**client_kwargs(backend, token, timeout))


def sync_client(backend: Backend, token: str | None, timeout: float) -> InferenceClient:
    """The blocking client of one backend (one per stream; ``pipeline.inference.stream``)."""
    return InferenceClient(**client_kwargs(backend, token, timeout))


def models_client(timeout: float) -> httpx2.Client:
    """The plain HTTP client of :func:`list_models` (address-checked on every request; a public app connects only
    to the checked address)."""
    return httpx2.Client(
        timeout=timeout,
        transport=netguard.httpx2_transport(),
        event_hooks={"request": [netguard.check_request]},
    )


def request_kwargs(backend: Backend, params: GenParams) -> dict[str, Any]:
    """The body of one chat request (besides the messages), ``response_format`` in the backend's dialect."""
    out: dict[str, Any] = {
        "max_tokens": int(params.max_new_tokens),
        "temperature": float(params.temperature),
        "top_p": float(params.top_p),
    }
    if params.seed is not None:
        out["seed"] = int(params.seed)
    if backend.model or backend.spec.request_model:
        out["model"] = backend.model or backend.spec.request_model
    if params.response_format is not None:
        refused = refused_schema(backend)
        if refused is not None:  # checked as the request is about to go: calls that waited for a slot send nothing
            raise refused
        out["response_format"] = response_format_payload(backend, params.response_format)
    return out


def parse_output(output: Any) -> tuple[str, str | None, int | None, int | None]:
    """(text, finish reason, prompt tokens, completion tokens) of a chat completion; raises on a malformed one."""
    choices = output.choices
    if not choices:
        raise IndexError("no choices in the reply")
    choice = choices[0]
    message = choice.message
    text = message.content if message is not None else None
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise TypeError("content is not text")
    usage = getattr(output, "usage", None)
    prompt_tokens = getattr(usage, "prompt_tokens", None) if usage is not None else None
    completion_tokens = getattr(usage, "completion_tokens", None) if usage is not None else None
    return text, choice.finish_reason, prompt_tokens, completion_tokens


def list_models(backend: Backend, token: str | None, *, timeout: float = 10.0) -> list[str]:
    """Model names an OpenAI-compatible server offers (``GET {base_url}/models``); ``[]`` if it does not say (or
    its kind has no such list)."""
    if not backend.spec.lists_models:
        return []
    backend.validate()
    url = norm_url(backend.base_url)
    if not url.endswith("/v1"):
        url += "/v1"
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        with models_client(timeout) as http:
            response = http.get(f"{url}/models", headers=headers)
        response.raise_for_status()
        data = response.json().get("data", [])
        return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]
    except Exception:  # noqa: BLE001 - a hint for the UI only
        return []
