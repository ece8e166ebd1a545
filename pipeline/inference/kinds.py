"""The backend kinds, one frozen spec each: the only place that knows how ``serverless``, ``endpoint`` and
``openai`` differ.

Owns :class:`KindSpec` and the table :data:`KINDS` (kind name -> spec), with :data:`BACKEND_KINDS` (the names, in
the order the UI and the CLI offer them) derived from it, the providers the HF router knows, and how a backend's
URL is shown (:func:`display_url`, without credentials) and compared (:func:`norm_url`). Everything else asks the
spec (``KINDS[kind].needs_url``, ``backend.spec.takes_api_key``, ...) instead of comparing kind names; a test
greps the tree for comparisons left behind (only the generated ``pipeline.py`` of ``pipeline/generate/recipe.py``
spells kinds out). This module imports nothing from the package: every other module of it may use the table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlparse

__all__ = [
    "BACKEND_KINDS",
    "BackendKind",
    "KINDS",
    "KindSpec",
    "PROVIDERS",
    "display_url",
    "kind_spec",
    "norm_url",
]

BackendKind = Literal["serverless", "endpoint", "openai"]

# Providers the HF router knows (``auto`` = let the router pick, by your preference order on hf.co/settings).
PROVIDERS: tuple[str, ...] = (
    "auto",
    "cerebras",
    "cohere",
    "featherless-ai",
    "fireworks-ai",
    "groq",
    "hf-inference",
    "hyperbolic",
    "nebius",
    "novita",
    "nscale",
    "ovhcloud",
    "publicai",
    "sambanova",
    "scaleway",
    "together",
)


@dataclass(frozen=True)
class KindSpec:
    """Everything that differs between backend kinds.

    - What a backend of this kind needs: ``needs_url`` (a base URL), ``needs_model`` (a model id; an endpoint
      serves one model, so it may go without), ``has_provider`` (a router provider), ``takes_api_key`` (an API key
      of its own, typed per call), ``sends_hf_token`` (the user's HF token goes with each call; a URL that gets it
      must be https unless it is loopback), ``needs_token`` (refuses to run without the user's token: sign-in).
    - Its limits: ``default_limit`` (the process-wide concurrency cap per key; ``DPO_STUDIO_MAX_CONCURRENCY``
      overrides), ``limits_per_credential`` (the provider limits each credential: one controller per token or key
      rather than one per server).
    - How it is shown: ``label`` (the UI's choice and messages about the kind), ``describe`` (a backend's label,
      formatted with ``model``, ``provider`` and ``url``), ``unnamed_model`` (the model field when none is given).
    - What to do when it refuses: ``unauthorized`` (401, signed in) and ``signed_out`` (401 without a token),
      ``forbidden`` (403), ``not_found`` (404), ``out_of_credit`` (402 / quota); formatted with ``model``.
    - Structured output: ``dialects``, the ``response_format`` dialects to try, in order (see
      ``pipeline.inference.dialects``); ``request_model`` the model name sent when a backend has none.
    - ``lists_models``: the server lists its models at ``GET {base_url}/models`` (OpenAI's API).
    """

    name: BackendKind
    label: str
    describe: str
    needs_url: bool
    needs_model: bool
    has_provider: bool
    takes_api_key: bool
    sends_hf_token: bool
    needs_token: bool
    default_limit: int
    limits_per_credential: bool
    dialects: tuple[str, ...]
    unauthorized: str
    signed_out: str
    forbidden: str
    not_found: str
    out_of_credit: str
    unnamed_model: str = ""
    request_model: str = ""
    lists_models: bool = False
    where: str = ""  # where a model of this kind runs, in words ({provider}, {base_url}): share links say it


_OTHER_CREDIT = "Add credits or raise the quota of this account or key, or pick another server; then resume the run."
_OTHER_FORBIDDEN = "Check that your account or key may use this server and model."

_SPECS = (
    KindSpec(
        name="serverless",
        label="HF Inference Providers (serverless, sign-in)",
        where="HF Inference Providers ({provider})",
        describe="{model} via HF Inference Providers ({provider})",
        needs_url=False,
        needs_model=True,
        has_provider=True,
        takes_api_key=False,
        sends_hf_token=True,
        needs_token=True,
        # Serverless calls spend each user's own quota (the router answers 429 per token), so the process-wide cap
        # is only a safety net and each run's own concurrency governs.
        default_limit=64,
        limits_per_credential=True,
        # OpenAI's form; huggingface_hub translates it into each provider's own.
        dialects=("json_schema",),
        unauthorized="Your sign-in may have expired: sign out and in again.",
        signed_out="Sign in with Hugging Face in the app, or set HF_TOKEN for the CLI.",
        forbidden=(
            "If {model} is gated, request access on https://huggingface.co/{model} and try again; check that "
            "your account may use Inference Providers (and has credits)."
        ),
        not_found=(
            "Check the model id (exact 'owner/name', e.g. Qwen/Qwen2.5-72B-Instruct) and that a provider "
            "serves {model} for chat (see its model page, 'Inference Providers'); or try provider 'auto'."
        ),
        out_of_credit=(
            "Add credits (hf.co/settings/billing) or subscribe to PRO, bill an organisation you belong to "
            "(hf.co/settings/inference-providers), or pick another provider or model; then resume the run."
        ),
    ),
    KindSpec(
        name="endpoint",
        label="HF Inference Endpoint (URL)",
        where="the Inference Endpoint {base_url}",
        describe="{model} on Inference Endpoint {url}",
        needs_url=True,
        needs_model=False,
        has_provider=False,
        takes_api_key=False,
        sends_hf_token=True,
        needs_token=False,
        default_limit=32,  # one machine for everyone: a tighter cap
        limits_per_credential=False,
        dialects=("json", "json_schema"),  # TGI's {"type": "json", "value": schema} first
        unauthorized="Sign in with a Hugging Face account that can use this endpoint.",
        signed_out="Sign in with a Hugging Face account that can use this endpoint.",
        forbidden=_OTHER_FORBIDDEN,
        not_found="Check the endpoint URL and that the endpoint is running a chat (TGI/vLLM) model.",
        out_of_credit=_OTHER_CREDIT,
        unnamed_model="the endpoint model",
        request_model="tgi",
    ),
    KindSpec(
        name="openai",
        label="OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp)",
        where="an OpenAI-compatible server at {base_url}",
        describe="{model} on {url}",
        needs_url=True,
        needs_model=True,
        has_provider=False,
        takes_api_key=True,
        sends_hf_token=False,
        needs_token=False,
        default_limit=32,
        limits_per_credential=True,  # hosted OpenAI-compatible APIs limit each key; a keyless URL is one machine
        dialects=("json_object", "json_schema"),  # llama.cpp's {"type": "json_object", "schema": ...} first
        unauthorized="Check the API key for this server (leave it empty if the server needs none).",
        signed_out="Check the API key for this server (leave it empty if the server needs none).",
        forbidden=_OTHER_FORBIDDEN,
        not_found=(
            "Check the model name ({model!r}; the server's /v1/models lists them) and the base URL: it must "
            "point at an OpenAI-compatible server, usually ending in /v1."
        ),
        out_of_credit=_OTHER_CREDIT,
        lists_models=True,
    ),
)

KINDS: Mapping[str, KindSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
BACKEND_KINDS: tuple[str, ...] = tuple(KINDS)
DEFAULT_KIND: BackendKind = "serverless"


def kind_spec(kind: str) -> KindSpec:
    """The spec of ``kind``; a ``ValueError`` that names the kinds for an unknown one."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"Unknown backend {kind!r}: pick one of {', '.join(BACKEND_KINDS)}.") from None


def display_url(url: str) -> str:
    """``url`` without user info, query or fragment (where credentials could hide), for messages and labels."""
    parts = urlparse((url or "").strip())
    if not parts.scheme or not parts.hostname:
        return (url or "").strip()
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname + (f":{port}" if port else "")
    return f"{parts.scheme}://{host}{parts.path}".rstrip("/")


def norm_url(url: str) -> str:
    """``url`` as compared and sent: no surrounding blanks, no trailing slash."""
    return url.strip().rstrip("/")
