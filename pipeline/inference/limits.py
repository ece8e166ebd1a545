"""The process-wide registry of rate controllers: which controller (``pipeline.inference.ratecontrol``) a call to a
backend spends, made on first use with the kind's default limit.

Owns the controller key (:func:`controller_key`: per credential where the kind's provider limits each one, a
sha256 of it and never the credential; else per server), the registry itself (:func:`limiter_for`, shared by
every thread and event loop of the process) and the user's ceiling (:func:`set_concurrency_limit`). Defaults come
from the kind table (``KindSpec.default_limit``); ``DPO_STUDIO_MAX_CONCURRENCY`` overrides them all.
"""

from __future__ import annotations

import os
import threading

from pipeline.inference import ratecontrol
from pipeline.inference.backends import Backend
from pipeline.inference.kinds import KINDS

__all__ = [
    "ConcurrencyLimiter",
    "ControllerState",
    "concurrency_limit",
    "controller_key",
    "controller_state",
    "limiter_for",
    "set_concurrency_limit",
]

ConcurrencyLimiter = ratecontrol.RateController
ControllerState = ratecontrol.ControllerState

_LIMITERS: dict[tuple[str, ...], ratecontrol.RateController] = {}
_LIMITERS_LOCK = threading.Lock()


def default_limit(kind: str) -> int:
    """The process-wide cap of a new key of ``kind``: ``DPO_STUDIO_MAX_CONCURRENCY``, else the kind's default
    (serverless calls spend each user's own quota, so there it is only a safety net and each run's concurrency
    governs; a shared endpoint or OpenAI-compatible server is one machine for everyone and gets a tighter cap)."""
    env = os.environ.get("DPO_STUDIO_MAX_CONCURRENCY", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return KINDS[kind].default_limit


def controller_key(backend: Backend, token: str | None = None) -> tuple[str, ...]:
    """Whose limits a call spends. Serverless: the user's account on that model and provider (a sha256 of the
    token, never the token), so one user's 429s never slow another's run. An OpenAI-compatible URL called with an
    API key: that key's account on that server (hosted APIs limit each key; users sharing one key share one
    controller). A shared server (an endpoint, a keyless OpenAI-compatible URL): one controller per URL."""
    spec = backend.spec
    if spec.limits_per_credential and (token or spec.needs_token):
        return (*backend.key, ratecontrol.credential_key(token))
    return backend.key


def limiter_for(backend: Backend, token: str | None = None) -> ratecontrol.RateController:
    """The process-wide controller of ``backend`` for ``token`` (made with the default limit on first use)."""
    key = controller_key(backend, token)
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = ratecontrol.RateController(default_limit(backend.kind))
        return limiter


def set_concurrency_limit(backend: Backend, limit: int, token: str | None = None) -> None:
    """At most ``limit`` requests in flight to ``backend`` (for ``token`` on serverless) at once, across the whole
    process: the ceiling the adaptive controller grows to and never passes.

    Defaults: 64 per serverless model and user, 32 per endpoint/OpenAI-compatible server
    (``DPO_STUDIO_MAX_CONCURRENCY`` overrides both). The pipeline sets its own concurrency here before a run."""
    limiter_for(backend, token).set_limit(limit)


def concurrency_limit(backend: Backend, token: str | None = None) -> int:
    """The ceiling of ``backend``'s controller (for ``token``): the user's setting."""
    return limiter_for(backend, token).limit


def controller_state(backend: Backend, token: str | None = None) -> ratecontrol.ControllerState:
    """What the controller of ``backend`` (for ``token``) allows now, has in flight and waits for."""
    return limiter_for(backend, token).state()
