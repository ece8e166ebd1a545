"""Named forms: how a tab hands its fields to a handler as one mapping instead of dozens of positional values.

Gradio passes ONE dict ``{component: value}`` to a handler whose ``inputs`` is a set of components. A
:class:`Form` names a tab's components once, gives that set (:meth:`Form.inputs`) and turns Gradio's dict into
``{name: value}`` (:meth:`Form.values`), so the tab's module-level handlers take ``(session, values)`` and tests
drive them with plain dicts. Wiring only: no logic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["Form"]


class Form:
    """A tab's input components by name (names are the keys the handler reads, e.g. ``RunSettings`` fields)."""

    def __init__(self, **components: Any) -> None:
        self.components: dict[str, Any] = dict(components)

    def add(self, **components: Any) -> Form:
        """A new form with these components added (a handler may need a few more fields than another)."""
        return Form(**self.components, **components)

    def inputs(self, *extra: Any) -> set:
        """The set of components to pass as ``inputs=`` (plus ``extra`` ones, e.g. the session state)."""
        return {*self.components.values(), *extra}

    def api_args(self, values: Mapping[str, Any], *extra: Any) -> list[Any]:
        """Positional arguments for a ``gradio_client`` call of an event wired with :meth:`inputs`: Gradio orders a
        set of inputs by component creation, so ``values`` (by name) and the ``extra`` components' values (given as
        ``(component, value)`` pairs) are put in that order."""
        by_component = {comp: values.get(name) for name, comp in self.components.items()}
        by_component.update(dict(extra))
        return [by_component[c] for c in sorted(by_component, key=lambda c: c._id)]

    def values(self, data: Mapping[Any, Any]) -> dict[str, Any]:
        """``{name: value}`` from Gradio's ``{component: value}`` dict."""
        return {name: data[comp] for name, comp in self.components.items() if comp in data}
