"""Why a run stops early, in words for people: which inference errors end the whole run (a refused token pauses
it, a missing model or an exhausted credit stops or pauses it, a provider that kept throttling pauses it) and the
message that says what to do; and how a failed call is named in a row's ``error``.

Owns :class:`RunStop` (raised inside the executor, ``pipeline.generate.executor``, to end the run with a state and a
message), :func:`stop_for`, :func:`error_kind` and :func:`named`. Every message is scrubbed of secrets by the
caller's ``scrub`` (``Credentials.scrub``) before it is kept. Pure; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable

from pipeline.generate.runhandle import STATE_PAUSED, STATE_STOPPED

__all__ = ["RunStop", "error_kind", "named", "stop_for"]


class RunStop(Exception):
    """A condition that ends the whole run early (auth rejected, model not found): the run's end state and why."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


def error_kind(exc: BaseException) -> tuple[str, int | None, str]:
    """(kind, status, message) of an inference error; unknown exceptions are kind "error"."""
    kind = getattr(exc, "kind", None) or "error"
    status = getattr(exc, "status", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(kind), status, str(message)


def named(model: str, message: str, role: str = "") -> str:
    """``message`` led by the model it is about, naming the model once (inference messages already name it)."""
    return f"{role}{model}: {message}" if model not in message else (f"{role.strip()}: {message}" if role else message)


def _is_auth(kind: str, status: int | None) -> bool:
    return kind in ("auth", "unauthorized", "forbidden") or status in (401, 403)


def _is_not_found(kind: str, status: int | None) -> bool:
    return kind in ("not_found", "model_not_found") or status == 404


def stop_for(exc: BaseException, model: str, what: str, scrub: Callable[[str], str]) -> RunStop | None:
    """The :class:`RunStop` that ``exc`` (a failed ``what`` call, e.g. "generation" or "judge", to ``model``) means
    for the whole run, or ``None`` when only its row fails."""
    kind, status, message = error_kind(exc)
    message = scrub(message)
    if _is_auth(kind, status):
        return RunStop(
            STATE_PAUSED,
            f"Paused: the {what} call to {model} was refused ({status or kind}: {message}). Your token "
            "may have expired or lacks access: sign in again, then resume the run; finished rows are kept.",
        )
    if _is_not_found(kind, status):
        return RunStop(
            STATE_STOPPED,
            f"Stopped: the {what} model {model!r} was not found ({message}). Check the model id and "
            "backend, then resume the run; finished rows are kept.",
        )
    if kind == "out_of_credit":  # the message says what to do: add credits, bill an organisation, switch
        return RunStop(STATE_PAUSED, f"Paused: {message} Finished rows are kept.")
    if kind == "throttled":
        return RunStop(
            STATE_PAUSED,
            f"Paused: {message} Resume the run later (finished rows are kept); or lower the concurrency, or "
            "allow a longer wait.",
        )
    return None
