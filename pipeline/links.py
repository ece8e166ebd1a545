"""Links for a language community: open the app with the language (and optionally model and system prompt)
already chosen, e.g. ``https://huggingface.co/spaces/you/dpo-studio?language=nld&model=Qwen/Qwen2.5-7B-Instruct``.

The one owner of link parsing (:func:`parse_link_params`, :func:`shared_from_request` for the app's tabs).

Only these public choices travel in a link: the language, the model, where the model runs (the backend kind, the
serverless provider, and for an Inference Endpoint or an OpenAI-compatible server its public URL: no user info,
query or fragment, where keys could hide), the system prompt and which built-in source the data came from (``aya``
or ``demo``, so the link opens on the same data). Nothing secret (no token, no API key, no private dataset id) is
ever put in one. A link opened on a public deployment that names a private address (loopback, a private range,
cloud metadata) is refused with the reason (``pipeline.core.netguard``): the model is then left unchosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from pipeline.core import netguard
from pipeline.core.credentials import public_url
from pipeline.inference.kinds import BACKEND_KINDS, KINDS

# Query parameter names, short and readable.
LANGUAGE = "language"
MODEL = "model"
SYSTEM_PROMPT = "system_prompt"
SOURCE = "source"
BACKEND = "backend"
BASE_URL = "base_url"
PROVIDER = "provider"
BACKENDS = BACKEND_KINDS  # the backend kinds a link can name (the inference kind table)
SOURCES = ("aya", "demo")  # the built-in sources a link can name (any other dataset may be private)

MAX_SYSTEM_PROMPT_CHARS = 2000  # browsers and proxies cut long URLs; a longer prompt is left out of the link
MAX_VALUE_CHARS = 200


@dataclass(frozen=True)
class SharedChoices:
    """What a community link pre-selects. Empty strings mean "not given"."""

    language: str = ""
    model: str = ""
    system_prompt: str = ""
    source: str = ""  # "aya" | "demo" | ""
    backend: str = ""  # where the model runs: one of BACKENDS ("" = not given: serverless)
    base_url: str = ""  # an endpoint's or OpenAI-compatible server's public URL
    provider: str = ""  # the serverless provider
    refused: str = ""  # why the link's server was not taken (a private address on a public deployment)

    def is_empty(self) -> bool:
        return not (self.language or self.model or self.system_prompt)

    def where(self) -> str:
        """Where the link's model runs, in words ("" when it names no backend)."""
        spec = KINDS.get(self.backend)
        return spec.where.format(provider=self.provider or "auto", base_url=self.base_url) if spec else ""


def build_link(base_url: str, choices: SharedChoices) -> str:
    """Build a link to ``base_url`` that pre-selects ``choices``.

    Existing query parameters of ``base_url`` are replaced; empty choices are left out. A system prompt longer
    than ``MAX_SYSTEM_PROMPT_CHARS`` is left out (the link would be cut by browsers).

    >>> build_link("https://x.hf.space/", SharedChoices(language="nld", model="org/m"))
    'https://x.hf.space/?language=nld&model=org%2Fm'
    """
    params: dict[str, str] = {}
    if choices.language:
        params[LANGUAGE] = choices.language.strip()
    if choices.model:
        params[MODEL] = choices.model.strip()
    if choices.system_prompt and len(choices.system_prompt) <= MAX_SYSTEM_PROMPT_CHARS:
        params[SYSTEM_PROMPT] = choices.system_prompt
    if choices.model and choices.backend in BACKENDS:
        params[BACKEND] = choices.backend
        spec = KINDS[choices.backend]
        if spec.has_provider and choices.provider and choices.provider != "auto":
            params[PROVIDER] = choices.provider
        url = public_url(choices.base_url)
        if spec.needs_url and url:
            params[BASE_URL] = url
    if choices.source in SOURCES:
        params[SOURCE] = choices.source
    scheme, netloc, path, _query, _fragment = urlsplit(base_url)
    return urlunsplit((scheme, netloc, path or "/", urlencode(params), ""))


def parse_link_params(query: Mapping[str, str]) -> SharedChoices:
    """Read the choices from a request's query parameters, ignoring unknown ones and over-long values."""

    def value(key: str, limit: int) -> str:
        raw = query.get(key) or ""
        raw = raw.strip() if key != SYSTEM_PROMPT else raw
        return raw if len(raw) <= limit else ""

    source = value(SOURCE, MAX_VALUE_CHARS).lower()
    backend = value(BACKEND, MAX_VALUE_CHARS).lower()
    spec = KINDS.get(backend)
    backend = backend if spec else ""
    base_url = public_url(value(BASE_URL, MAX_VALUE_CHARS)) if spec and spec.needs_url else ""
    refused = ""
    if spec and spec.needs_url:
        if not base_url.startswith(("http://", "https://")):
            refused = f"The link's server address {base_url or '(none)'} is not a URL."
        else:
            try:
                netguard.check_url(base_url, what=f"The link's server {base_url}")
            except netguard.AddressRefused as exc:
                refused = exc.message
        if refused:
            backend, base_url = "", ""
    return SharedChoices(
        language=value(LANGUAGE, MAX_VALUE_CHARS),
        model=value(MODEL, MAX_VALUE_CHARS),
        system_prompt=value(SYSTEM_PROMPT, MAX_SYSTEM_PROMPT_CHARS),
        source=source if source in SOURCES else "",
        backend=backend,
        base_url=base_url,
        provider=value(PROVIDER, MAX_VALUE_CHARS) if backend and spec and spec.has_provider else "",
        refused=refused,
    )


def shared_from_request(request: object) -> SharedChoices:
    """The choices of the link a page was opened with: ``request`` is the app's request (anything with
    ``query_params``), or ``None`` (no link)."""
    params = getattr(request, "query_params", None)
    return parse_link_params(dict(params) if params else {})


def choices_from_session(session: object) -> SharedChoices:
    """The shareable choices of a session: its filtered language and source (Aya or the demo data; another
    dataset is left out, it may be private), and the model and system prompt it chose in the Playground ("Use in
    pipeline"). Works on ``ui.session.Session``; missing parts stay empty."""
    filtered = getattr(session, "filtered", None)
    choice = getattr(session, "model_choice", None)
    source = str(getattr(getattr(filtered, "source", None), "short_name", "") or "")
    return SharedChoices(
        language=str(getattr(filtered, "language_code", "") or ""),
        model=str(getattr(choice, "model", "") or ""),
        system_prompt=str(getattr(choice, "system_prompt", "") or ""),
        source=source if source in SOURCES else "",
        backend=str(getattr(choice, "backend", "") or ""),
        base_url=public_url(str(getattr(choice, "base_url", "") or "")),
        provider=str(getattr(choice, "provider", "") or ""),
    )


def missing_choices(choices: SharedChoices) -> list[str]:
    """What a link made from ``choices`` will not carry, as short phrases for a note ("a model", ...)."""
    missing = []
    if not choices.language:
        missing.append("a language")
    if not choices.model:
        missing.append("a model")
    if not choices.system_prompt:
        missing.append("a system prompt")
    elif len(choices.system_prompt) > MAX_SYSTEM_PROMPT_CHARS:
        missing.append(f"the system prompt (longer than {MAX_SYSTEM_PROMPT_CHARS:,} characters, too long for a link)")
    return missing


def public_base_url(request_url: str, space_host: str | None = None) -> str:
    """Where people open the app: ``https://<SPACE_HOST>/`` on a Space (the first host when several are listed),
    else the scheme and host of the request the user made.

    >>> public_base_url("http://127.0.0.1:7860/gradio_api/queue/join?x=1")
    'http://127.0.0.1:7860/'
    >>> public_base_url("http://10.0.0.5:7860/", "me-dpo-studio.hf.space,dpo.example.org")
    'https://me-dpo-studio.hf.space/'
    """
    if space_host:
        return f"https://{space_host.split(',')[0].strip()}/"
    scheme, netloc, *_ = urlsplit(request_url)
    return urlunsplit((scheme or "http", netloc, "/", "", ""))
