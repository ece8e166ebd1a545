"""The one UI convention: how a tab wires an event to a module-level handler, with named inputs and named outputs.

- A :class:`Form` names a tab's input components once. Gradio passes their values by those names
  (``inputs_kwargs``, Gradio's public way), and the handler gets them as ONE mapping ``{name: value}``.
- A handler is a module-level function ``handler(session, values, *, oauth_token=..., profile=...)`` (each part
  optional: a timer's handler takes only the session) that returns **named outputs**: a mapping
  ``{output name: value or gr.update}``. Outputs it leaves out keep what they show. Tests call handlers with plain
  dicts and read the names.
- :func:`wire` connects a trigger (``button.click``, ``timer.tick``, ``dep.then``...) to a handler through ONE
  generic adapter (this module's), which asks Gradio for the sign-in (token and profile) and the request only to
  pass them to a handler that takes them: no per-event closures in a tab's ``build``.
- An API caller (``gradio_client``) gives the values in the form's order: :meth:`Form.api_args`.

Wiring only: no logic, no private Gradio attributes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import gradio as gr

__all__ = ["SESSION", "Form", "pick", "wire"]

SESSION = "session"  # the name the session state travels under (never a form field's name)


class Form:
    """A tab's input components by name (names are the keys the handler reads, e.g. ``RunSettings`` fields)."""

    def __init__(self, **components: Any) -> None:
        if SESSION in components:
            raise ValueError(f"{SESSION!r} is reserved for the session state")
        self.components: dict[str, Any] = dict(components)

    def add(self, **components: Any) -> Form:
        """A new form with these components added (a handler may need a few more fields than another)."""
        return Form(**self.components, **components)

    def names(self) -> list[str]:
        return list(self.components)

    def api_args(self, values: Mapping[str, Any]) -> list[Any]:
        """Positional arguments for a ``gradio_client`` call of an event wired with :func:`wire`: the values in the
        form's order (Gradio's API lists keyword inputs in the order given; the session state is not an API
        argument)."""
        return [values.get(name) for name in self.components]

    def values(self, data: Mapping[Any, Any]) -> dict[str, Any]:
        """``{name: value}`` from a ``{component: value}`` dict (for code that holds the components)."""
        return {name: data[comp] for name, comp in self.components.items() if comp in data}


def pick(components: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """``{name: component}`` for these names (a tab's named outputs, from its components by name)."""
    return {k: components[k] for k in dict.fromkeys(keys)}


def _call(
    handler: Callable[..., Any],
    wants: frozenset[str],
    kwargs: dict[str, Any],
    auth: Mapping[str, Any],
    with_values: bool,
) -> Any:
    args = []
    if SESSION in kwargs:
        args.append(kwargs.pop(SESSION))
    if with_values:
        args.append(kwargs)
    return handler(*args, **{k: v for k, v in auth.items() if k in wants})


def _named(result: Any, outputs: Mapping[str, Any]) -> Any:
    """A handler's named outputs as Gradio's ``{component: value}``; an unknown name is a wiring mistake."""
    if not outputs:
        return None
    if not isinstance(result, Mapping):
        raise TypeError(f"a handler must return named outputs (a mapping), not {type(result).__name__}")
    unknown = set(result) - set(outputs)
    if unknown:
        raise KeyError(f"handler returned outputs this event does not show: {', '.join(sorted(unknown))}")
    if not result:  # nothing changes (Gradio reads an empty dict as one value, not as "no component")
        skips = tuple(gr.skip() for _ in outputs)
        return skips[0] if len(skips) == 1 else skips
    return {outputs[name]: value for name, value in result.items()}


def _adapter(
    handler: Callable[..., Any], outputs: Mapping[str, Any], with_values: bool, progress: bool
) -> Callable[..., Any]:
    """The one adapter: Gradio's keyword inputs -> ``handler(session, values, **auth)`` -> named outputs."""
    wants = frozenset(inspect.signature(handler).parameters)
    if inspect.isgeneratorfunction(handler):

        def stream(
            oauth_token: gr.OAuthToken | None = None,
            profile: gr.OAuthProfile | None = None,
            request: gr.Request | None = None,
            **kwargs: Any,
        ) -> Iterator[Any]:
            auth = {"oauth_token": oauth_token, "profile": profile, "request": request}
            for result in _call(handler, wants, kwargs, auth, with_values):
                yield _named(result, outputs)

        return stream
    if progress:

        def event_with_progress(
            oauth_token: gr.OAuthToken | None = None,
            profile: gr.OAuthProfile | None = None,
            request: gr.Request | None = None,
            progress: gr.Progress = gr.Progress(),
            **kwargs: Any,
        ) -> Any:
            auth = {"oauth_token": oauth_token, "profile": profile, "request": request, "progress": progress}
            return _named(_call(handler, wants, kwargs, auth, with_values), outputs)

        return event_with_progress

    def event(
        oauth_token: gr.OAuthToken | None = None,
        profile: gr.OAuthProfile | None = None,
        request: gr.Request | None = None,
        **kwargs: Any,
    ) -> Any:
        auth = {"oauth_token": oauth_token, "profile": profile, "request": request}
        return _named(_call(handler, wants, kwargs, auth, with_values), outputs)

    return event


def wire(
    trigger: Callable[..., Any],
    handler: Callable[..., Any],
    *,
    session: Any = None,
    form: Form | None = None,
    outputs: Mapping[str, Any] | None = None,
    **event: Any,
) -> Any:
    """Connect ``trigger`` (e.g. ``button.click``) to ``handler``: it gets the ``session`` state's value (if given),
    then the ``form``'s values by name (if given), then ``oauth_token`` / ``profile`` / ``request`` / ``progress``
    if it takes them; it returns ``{name: value}`` for ``outputs`` (``{name: component}``). ``event``: Gradio's other event
    options (``api_name``, ``show_progress``...). Returns Gradio's dependency (for ``.then``)."""
    outputs = dict(outputs or {})
    kwargs = {SESSION: session} if session is not None else {}
    kwargs.update(form.components if form is not None else {})
    progress = "progress" in inspect.signature(handler).parameters
    adapter = _adapter(handler, outputs, form is not None, progress)
    adapter.form = form  # type: ignore[attr-defined]  # for API callers (Form.api_args) and tests
    adapter.handler = handler  # type: ignore[attr-defined]
    return trigger(
        adapter,
        inputs=None,
        inputs_kwargs=kwargs or None,
        outputs=list(outputs.values()),
        **event,
    )
