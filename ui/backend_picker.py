"""One reusable backend picker: where a model runs (HF Inference Providers, an Inference Endpoint, or any
OpenAI-compatible server), its model id, provider, base URL and API key — for the Pipeline's generators and judge
(and any tab that needs a model). Wiring only: the choices come from :mod:`pipeline.inference`, and the values are
read as a mapping with :meth:`BackendPicker.fields` (the key names of ``RunSettings.from_mapping``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipeline import inference
from ui.common import warn
from ui.forms import Form, wire

__all__ = [
    "KIND_CHOICES",
    "BackendPicker",
    "follow",
    "kind_updates",
    "kind_changed",
    "kind_changed_listing",
    "list_server_models",
    "set_to",
]


def _short(label: str) -> str:
    """A choice that fits its dropdown (the examples in brackets go to the box's info line)."""
    return label if len(label) <= 32 else label.split(" (")[0]


KIND_CHOICES = [(_short(spec.label), name) for name, spec in inference.KINDS.items()]
KIND_INFO = "; ".join(spec.label for spec in inference.KINDS.values() if _short(spec.label) != spec.label)


def _spec(kind: str) -> inference.KindSpec:
    return inference.KINDS.get(kind) or inference.KINDS[inference.DEFAULT_KIND]


def visibility(kind: str) -> tuple[Any, Any, Any, Any]:
    """(provider, base URL, API key, list button) visibility for a backend kind (from the kind table)."""
    spec = _spec(kind)
    return (
        gr.update(visible=spec.has_provider),
        gr.update(visible=spec.needs_url),
        gr.update(visible=spec.takes_api_key),
        gr.update(visible=spec.lists_models),
    )


def kind_updates(kind: str, base_url: str = "", provider: str = "auto") -> dict[str, Any]:
    """``{field name: gr.update}`` that set a picker's ``kind``, ``provider``, ``base_url`` and ``api_key`` to a
    backend (the one rule for "Use this judge", the Pipeline tab's prefill and an empty judge following)."""
    spec = _spec(kind)
    return {
        "kind": gr.update(value=kind),
        "provider": gr.update(value=provider or "auto", visible=spec.has_provider),
        "base_url": gr.update(value=base_url, visible=spec.needs_url),
        "api_key": gr.update(visible=spec.takes_api_key),
    }


def kind_changed(values: Mapping[str, Any]) -> dict[str, Any]:
    """Show the fields a backend kind needs (``values["kind"]``): provider, base URL, API key."""
    provider, base_url, api_key, _ = visibility(values.get("kind") or inference.DEFAULT_KIND)
    return {"provider": provider, "base_url": base_url, "api_key": api_key}


def kind_changed_listing(values: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`kind_changed`, plus the "List the server's models" button (an OpenAI-compatible server's)."""
    return {**kind_changed(values), "list": visibility(values.get("kind") or inference.DEFAULT_KIND)[3]}


def list_server_models(values: Mapping[str, Any]) -> dict[str, Any]:
    """The models an OpenAI-compatible server lists at ``/models``, as choices of the model dropdown. ``values``:
    ``model``, ``base_url``, ``api_key``."""
    model, base_url, api_key = (values.get(k) or "" for k in ("model", "base_url", "api_key"))
    try:
        backend = inference.backend_from({"kind": "openai", "model": model or "?", "base_url": base_url})
        names = inference.list_models(backend, api_key or None)
    except inference.InferenceError as exc:
        warn(exc.message)
        return {}
    if not names:
        gr.Warning("The server did not list any models at /models: type the model name yourself.")
        return {}
    gr.Info(f"{len(names)} model(s) on the server.")
    return {"model": gr.update(choices=names, value=model if model in names else names[0])}


def set_to(prefix: str, kind: str, model: str, base_url: str = "", provider: str = "auto") -> dict[str, Any]:
    """Named updates (``{prefix}kind``...) that set a picker to a backend (e.g. "Use this judge")."""
    by_name = {f"{prefix}{k}": v for k, v in kind_updates(kind, base_url, provider).items()}
    return {**by_name, f"{prefix}model": gr.update(value=model)}


def follow(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """Named updates that move the picker ``prefix`` (its fields ``{prefix}kind``... in ``values``) to where the
    leading picker runs (``kind``, ``base_url``, ``provider`` in ``values``), when its model id is empty: an empty
    judge is "the first generator", so it shows the generator's backend; a judge with a model id is left alone."""
    if str(values.get(f"{prefix}model") or "").strip():
        return {}
    kind = values.get("kind") or inference.DEFAULT_KIND
    updates = kind_updates(kind, values.get("base_url") or "", values.get("provider") or "auto")
    return {f"{prefix}{k}": v for k, v in updates.items()}


@dataclass
class BackendPicker:
    """The components of one picker. Build it with :meth:`build` inside a layout block."""

    kind: Any
    model: Any
    provider: Any
    base_url: Any
    api_key: Any

    @classmethod
    def build(
        cls,
        model_label: str,
        default_model: str = "",
        *,
        lines: int = 1,
        kind: str = inference.DEFAULT_KIND,
        suggestions: Sequence[str] | None = None,
        model_info: str | None = None,
    ) -> BackendPicker:
        """The components, in the current layout block. With ``suggestions`` the model id is a dropdown that
        also takes any typed id, and an OpenAI-compatible server gets a "List the server's models" button."""
        model: gr.Textbox | gr.Dropdown
        if suggestions is None:
            model = gr.Textbox(label=model_label, value=default_model, lines=lines, max_lines=8, info=model_info)
        else:
            model = gr.Dropdown(
                choices=list(suggestions),
                value=default_model or None,
                allow_custom_value=True,
                label=model_label,
                info=model_info,
            )
        kind_dd = gr.Dropdown(
            choices=KIND_CHOICES,
            value=kind,
            label="Runs on",
            info=KIND_INFO or None,
        )
        spec = _spec(kind)
        provider = gr.Dropdown(
            choices=list(inference.PROVIDERS),
            value="auto",
            label="Provider",
            info="auto = the first available in your Hugging Face settings order.",
            visible=spec.has_provider,
        )
        base_url = gr.Textbox(label="Base URL", placeholder="http://127.0.0.1:8080/v1", visible=spec.needs_url)
        api_key = gr.Textbox(
            label="API key (optional)",
            type="password",
            visible=spec.takes_api_key,
            info="Sent to this server only, per call; never stored or shown again.",
        )
        list_btn = gr.Button(
            "List the server's models", size="sm", visible=spec.lists_models and suggestions is not None
        )
        picker = cls(kind_dd, model, provider, base_url, api_key)
        shown = {"provider": provider, "base_url": base_url, "api_key": api_key}
        if suggestions is None:
            wire(kind_dd.change, kind_changed, form=Form(kind=kind_dd), outputs=shown)
        else:
            wire(kind_dd.change, kind_changed_listing, form=Form(kind=kind_dd), outputs={**shown, "list": list_btn})
            wire(
                list_btn.click,
                list_server_models,
                form=Form(model=model, base_url=base_url, api_key=api_key),
                outputs={"model": model},
            )
        return picker

    def fields(self, prefix: str = "", model_key: str = "model") -> dict[str, Any]:
        """The components by ``RunSettings.from_mapping`` key: ``{prefix}kind``, ``{prefix}model`` (or
        ``model_key``), ``{prefix}provider``, ``{prefix}base_url``, ``{prefix}api_key``."""
        return {
            f"{prefix}kind": self.kind,
            model_key if not prefix else f"{prefix}model": self.model,
            f"{prefix}provider": self.provider,
            f"{prefix}base_url": self.base_url,
            f"{prefix}api_key": self.api_key,
        }
