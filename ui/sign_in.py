"""What the app says about signing in, following the real state: with sign-in on (a Space with ``hf_oauth``, or a
local machine whose HF token the mock sign-in can use) the texts point at the "Sign in with Hugging Face" button at
the top; with sign-in off they say so and what works without it, instead of pointing at a button that is not there.

``app.build_app`` calls :func:`configure` once, before the tabs are built (a property of the deployment, the same
for every user: no per-user state here).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["configure", "how", "hub_checkpoints_note", "is_available", "needed"]


@dataclass
class _State:
    available: bool = True
    note: str = ""  # why sign-in is off (when it is)


_STATE = _State()


def configure(available: bool, note: str = "") -> None:
    """Set whether this deployment offers sign-in (``note``: why not, one line)."""
    _STATE.available = available
    _STATE.note = note


def is_available() -> bool:
    return _STATE.available


def how() -> str:
    """How to get a token here, as the start of a sentence ("Sign in with Hugging Face (button at the top)")."""
    if _STATE.available:
        return "Sign in with Hugging Face (button at the top)"
    return "Sign-in is off on this deployment (run the app where it is on, e.g. a Space, or with an HF token)"


def needed() -> str:
    """The sentence for an action that needs sign-in (pushing to the Hub...)."""
    if _STATE.available:
        return "Sign in with Hugging Face (button at the top) to do this: it uses your account and token."
    return (
        "This needs a Hugging Face sign-in, which is off on this deployment"
        + (f" ({_STATE.note.rstrip('.')})" if _STATE.note else "")
        + ". Downloads, the demo data and a local OpenAI-compatible server work without it."
    )


def hub_checkpoints_note() -> str:
    """The Hub-checkpoints box's note for a visitor who is not signed in."""
    if _STATE.available:
        return "Sign in to use this; without sign-in results stay on this server's disk."
    return "Sign-in is off here: results stay on this server's disk."
