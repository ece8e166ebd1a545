"""Small helpers shared by the tabs (UI glue only; no logic that the CLI would also need)."""

from __future__ import annotations

import gradio as gr


def token_of(oauth_token: gr.OAuthToken | None) -> str | None:
    """The signed-in user's token for this call, or None. Never stored in state, logged or rendered."""
    return oauth_token.token if oauth_token is not None else None


def username_of(profile: gr.OAuthProfile | None) -> str | None:
    return profile.username if profile is not None else None


SIGN_IN_NEEDED = "Sign in with Hugging Face (button at the top) to do this: it uses your account and token."
