"""Small helpers shared by the tabs (UI glue only; no logic that the CLI would also need)."""

from __future__ import annotations

import html

import gradio as gr


def token_of(oauth_token: gr.OAuthToken | None) -> str | None:
    """The signed-in user's token for this call, or None. Never stored in state, logged or rendered."""
    return oauth_token.token if oauth_token is not None else None


def username_of(profile: gr.OAuthProfile | None) -> str | None:
    return profile.username if profile is not None else None


SIGN_IN_NEEDED = "Sign in with Hugging Face (button at the top) to do this: it uses your account and token."


def warn(message: object) -> None:
    """``gr.Warning`` for a message that may quote untrusted text (a dataset's column names, a server's error, a
    typed repo id). Gradio renders toast messages as (sanitised) HTML, so the message is escaped to show as text."""
    gr.Warning(html.escape(str(message), quote=False))


def info(message: object) -> None:
    """``gr.Info`` with the message shown as text (see :func:`warn`)."""
    gr.Info(html.escape(str(message), quote=False))
