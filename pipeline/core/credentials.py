"""Credentials of one run or call: which secret goes to which backend, and scrubbing them from text.

Owns the routing rule of the whole app and CLI, in one place: the user's HF token goes to ``serverless`` and
``endpoint`` backends only; an OpenAI-compatible server gets the API key given for its base URL, or nothing, so
the HF token never reaches a third-party URL. A :class:`Credentials` lives only as long as the run or call that
uses it: it is never stored in a session, written, logged or shown (its ``repr`` hides everything).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Credentials", "api_keys_for", "env_api_key", "public_url", "scrub"]


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment (where credentials could hide), for cards and checkpoints.

    >>> public_url("https://user:pw@host:8080/v1?key=s#x")
    'https://host:8080/v1'
    """
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _takes_api_key(backend: Any) -> bool:
    """Whether ``backend``'s kind takes an API key of its own (its ``spec`` from ``pipeline.inference``'s kind
    table: core sits below inference, so the spec is read from the backend, not imported)."""
    return bool(getattr(getattr(backend, "spec", None), "takes_api_key", False))


def _sends_hf_token(backend: Any) -> bool:
    """Whether ``backend``'s kind gets the user's HF token (its ``spec.sends_hf_token``)."""
    return bool(getattr(getattr(backend, "spec", None), "sends_hf_token", False))


def _url_key(url: str) -> str:
    return public_url((url or "").strip()).rstrip("/")


class Credentials:
    """The credentials of one run: ``token`` (the user's HF token) and ``api_keys`` (OpenAI-compatible base URL ->
    key). :meth:`for_backend` picks the one a backend may see; :meth:`scrub` removes all of them from a text."""

    __slots__ = ("_token", "_keys")

    def __init__(self, token: str | None = None, api_keys: Mapping[str, str] | None = None) -> None:
        self._token = token or None
        self._keys = {_url_key(u): k for u, k in (api_keys or {}).items() if k}

    @property
    def token(self) -> str | None:
        """The HF token (for Hub calls made on the user's behalf)."""
        return self._token

    def for_backend(self, backend: Any) -> str | None:
        """The secret ``backend`` may receive: the API key of its URL for a kind that takes one (an
        OpenAI-compatible server), the HF token for a kind that sends it, else nothing."""
        if _takes_api_key(backend):
            return self._keys.get(_url_key(getattr(backend, "base_url", "")))
        return self._token if _sends_hf_token(backend) else None

    def scrub(self, text: str) -> str:
        """``text`` with every secret replaced by ``***``."""
        for secret in (self._token, *self._keys.values()):
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return "Credentials(***)"


def api_keys_for(backends: Iterable[Any], key: str | Mapping[Any, str] | None) -> dict[str, str]:
    """Base URL -> API key for the OpenAI-compatible ``backends``.

    ``key`` is one key for all of them (the CLI's ``OPENAI_API_KEY``), or a mapping from backend to its key (the
    Pipeline tab's generator key and judge key). Blank keys are left out.
    """
    out: dict[str, str] = {}
    for backend in backends:
        if not _takes_api_key(backend):
            continue
        value = key.get(backend) if isinstance(key, Mapping) else key
        if value and value.strip():
            out[backend.base_url] = value.strip()
    return out


def env_api_key() -> str | None:
    """The CLI's key for OpenAI-compatible servers: ``OPENAI_API_KEY`` from the environment."""
    return os.environ.get("OPENAI_API_KEY") or None


def scrub(text: str, secrets: Credentials | str | None) -> str:
    """``text`` without the secrets of ``secrets`` (a :class:`Credentials` or one secret)."""
    if isinstance(secrets, Credentials):
        return secrets.scrub(text)
    if secrets and secrets in text:
        text = text.replace(secrets, "***")
    return text


def sign_in_refusal(roles: Iterable[tuple[str, Any]], token: str | None, how: str, *, instead: str = "") -> str:
    """The one sign-in check for models that run on serverless inference (the user's HF token): ``""`` when none
    does or there is a token; else the message, naming each model's role, e.g. "The judge org/m runs on serverless
    inference, with your account. Sign in ..., or choose a server under “Runs on” for it". ``roles``: (role,
    backend) pairs (a backend has ``kind`` and ``model``); ``how``: how to sign in where the user is; ``instead``:
    what else to do (default: choose a server for them)."""
    serverless: dict[str, list[str]] = {}  # model -> its roles (a model that is generator and judge is named once)
    for role, backend in roles:
        needs_token = getattr(getattr(backend, "spec", None), "needs_token", False)  # serverless: the user's token
        if needs_token and role not in serverless.setdefault(backend.model, []):
            serverless[backend.model].append(role)
    serverless = {model: r for model, r in serverless.items() if r}
    if not serverless or token:
        return ""
    names = ", ".join(f"the {' and '.join(r)} {model}" for model, r in serverless.items())
    one = len(serverless) == 1
    instead = (
        instead
        or f"choose a server under “Runs on” for {'it' if one else 'them'} (e.g. a local OpenAI-compatible server)"
    )
    return f"{names[:1].upper()}{names[1:]} run{'s' if one else ''} on serverless inference, with your account. {how}, or {instead}."
