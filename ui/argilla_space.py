"""The Argilla tab's "Create an Argilla Space" section: one name, one click, then connected.

UI glue only: :mod:`pipeline.argilla.space` creates and follows the Space (the CLI's ``dpo-studio argilla
create-space`` calls the same functions). The generated owner credentials are kept in ``session.argilla_tab`` (this
browser session only), shown once with copy buttons, and never logged or put in a link.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final

import gradio as gr

from pipeline import argilla as aio
from pipeline.argilla import space
from ui.common import md_link, md_text, token_of, username_of
from ui.forms import Form, pick
from ui.forms import wire as wire_event
from ui.session import Session

_md = md_text


SPACE_DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType({"space_name": "", "space_storage": False})
SPACE_INTRO = (
    "No Argilla server yet? Create one on the Hugging Face Hub, in your namespace (or an organisation where you can "
    "write), from Argilla's official Space template. DPO Studio makes its owner password and API key, keeps them "
    "for this browser session only and shows them to you once: save them. When the Space runs, this tab connects "
    "to it on its own."
)


SPACE_OUTPUTS = {  # the create-space event's named outputs: {the handler's name: the tab's component name}
    "space_status": "space_status",
    "logs": "space_logs",
    "creds": "space_creds",
    "password": "space_password",
    "api_key": "space_key",
    "url": "url",
    "conn_status": "conn_status",
    "workspace": "workspace",
}


def _space_out(session: Session, status: str, **changes: Any) -> dict[str, Any]:
    """The create-space event's named outputs (:data:`SPACE_OUTPUTS`): the status, the logs (hidden unless given)
    and the ones ``changes`` name."""
    return {"space_status": status, "logs": changes.pop("logs", gr.update(value="", visible=False)), **changes}


def _space_id(name: str, username: str | None) -> str:
    name = (name or "").strip().strip("/")
    if not name:
        return space.default_space_id(username)
    return f"{username}/{name}" if "/" not in name and username else name


def on_create_space(
    session: Session,
    values: Mapping[str, Any],
    oauth_token: gr.OAuthToken | None = None,
    profile: gr.OAuthProfile | None = None,
) -> Iterator[dict[str, Any]]:
    """Create (or reuse) the Argilla Space named in ``values["space_name"]`` with the user's token, follow its build
    with the elapsed time, then connect to it. ``values``: ``space_name``, ``space_storage`` (:data:`SPACE_DEFAULTS`).
    Yields the outputs of :func:`_space_out`."""
    v = {**SPACE_DEFAULTS, **values}
    token, user = token_of(oauth_token), username_of(profile)
    if not token or not user:
        yield _space_out(
            session, "**Sign in with Hugging Face first** (top right): the Space is created with your account."
        )
        return
    space_id = _space_id(v["space_name"], user)
    state = session.argilla_tab
    known = state.space_credentials if state.space_id.lower() == space_id.lower() else None
    credentials = known or space.new_credentials(user.lower())
    try:
        first = space.create_space(token, space_id, credentials, storage=bool(v["space_storage"]))
        if not first.reused:
            state.space_id, state.space_credentials = first.space_id, credentials
            known = credentials
        verb = "Reusing the existing" if first.reused else "Created the"
        intro = f"{verb} Space {md_link(first.space_id, first.page)}."
        yield _space_out(session, f"{intro} {_md(first.summary())}")
        final = first
        for final in space.watch(token, first.space_id, reused=first.reused):
            yield _space_out(session, f"{intro} {_md(final.summary())}")
    except space.SpaceError as exc:
        logs = gr.update(value="\n".join(exc.logs), visible=bool(exc.logs))
        yield _space_out(session, f"**The Argilla Space is not ready.** {_md(exc.message)}", logs=logs)
        return
    if known is None:
        yield _space_out(
            session,
            f"{intro} It runs at {_md(final.url)}. It existed before, so its owner API key is the one you saved when "
            "it was created: paste it in **API key** above and click **Connect**.",
            url=final.url,
        )
        return
    try:
        with aio.connect(final.url, known.api_key) as conn:
            spaces = aio.list_workspaces(conn)
    except aio.ArgillaIOError as exc:
        yield _space_out(
            session, f"{intro} The Space runs, but Argilla did not answer yet: {_md(exc)} Click again in a minute."
        )
        return
    session.argilla_url, session.argilla_key = conn.url, known.api_key
    shown = not first.reused  # the credentials are shown once: right after the Space was created
    yield _space_out(
        session,
        f"**Connected to your new Argilla Space** {md_link(final.space_id, final.page)} "
        f"({final.elapsed_s:.0f} s). Next: send the pairs below."
        + (" Save the owner password and API key now: they are not shown again." if shown else ""),
        creds=gr.update(visible=shown),
        password=credentials.password if shown else "",
        api_key=credentials.api_key if shown else "",
        url=conn.url,
        conn_status=f"**Connected** to {_md(conn.url)} as {_md(conn.username)} ({_md(conn.role)}).",
        workspace=gr.update(choices=spaces, value=spaces[0] if spaces else None),
    )


def space_name_default(values: Mapping[str, Any], profile: gr.OAuthProfile | None = None) -> dict[str, Any]:
    """The Space name box (``values["space_name"]``): what the user typed, else ``<user>/argilla`` once they are
    signed in. Named output ``space_name``."""
    name = values.get("space_name") or ""
    default = space.default_space_id(username_of(profile)) if profile else ""
    return {"space_name": name if name.strip() else default}


def on_hide_credentials() -> dict[str, Any]:
    """Hide the credentials for good (the session keeps the key to connect; nothing shows them again)."""
    return {"creds": gr.update(visible=False), "password": "", "api_key": ""}


def build_section(c: dict[str, Any]) -> None:
    """The section's components, added to the tab's ``c`` by name."""
    with gr.Accordion("Create an Argilla Space (one click)", open=False, elem_id="create-space"):
        gr.Markdown(SPACE_INTRO)
        with gr.Row():
            c["space_name"] = gr.Textbox(
                label="Space name", value=SPACE_DEFAULTS["space_name"], placeholder="your-name/argilla", scale=3
            )
            c["space_storage"] = gr.Checkbox(
                label="Persistent storage (paid)",
                value=SPACE_DEFAULTS["space_storage"],
                info=space.STORAGE_OFFER,
                scale=3,
            )
        c["create_space"] = gr.Button("Create an Argilla Space", variant="primary")
        c["space_status"] = gr.Markdown(elem_id="space-status")
        c["space_logs"] = gr.Textbox(label="Last lines of the Space's logs", lines=8, visible=False, interactive=False)
        with gr.Group(visible=False) as c["space_creds"]:
            gr.Markdown("**Argilla owner credentials: shown once, save them now.**")
            c["space_password"] = gr.Textbox(
                label="Owner password", interactive=False, buttons=["copy"], elem_id="space-password"
            )
            c["space_key"] = gr.Textbox(label="Owner API key", interactive=False, buttons=["copy"], elem_id="space-key")
            c["hide_creds"] = gr.Button("I saved them: hide", size="sm")


def wire(session: gr.State, tab: gr.Tab, c: dict[str, Any]) -> Form:
    """The section's events (ui/forms.py's convention); returns its form."""
    space_form = Form(space_name=c["space_name"], space_storage=c["space_storage"])
    out = {name: c[component] for name, component in SPACE_OUTPUTS.items()}
    wire_event(
        c["create_space"].click,
        on_create_space,
        session=session,
        form=space_form,
        outputs=out,
        api_name="on_create_space",
    )
    wire_event(tab.select, space_name_default, form=Form(space_name=c["space_name"]), outputs=pick(c, "space_name"))
    hide_out = {k: out[k] for k in ("creds", "password", "api_key")}
    wire_event(c["hide_creds"].click, on_hide_credentials, outputs=hide_out)
    return space_form
