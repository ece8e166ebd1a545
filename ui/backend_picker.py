"""One reusable backend picker: where a model runs (HF Inference Providers, an Inference Endpoint, or any
OpenAI-compatible server), its model id, provider, base URL and API key — for the Pipeline's generators and judge
(and any tab that needs a model). Wiring only: the choices come from :mod:`pipeline.inference`, and the values are
read as a mapping with :meth:`BackendPicker.fields` (the key names of ``RunSettings.from_mapping``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipeline import inference
from ui.common import warn

__all__ = ["KIND_CHOICES", "BackendPicker", "kind_updates"]

KIND_CHOICES = [(spec.label, name) for name, spec in inference.KINDS.items()]


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
    backend (the one rule for "Use this judge" and the Pipeline tab's prefill from the Playground)."""
    spec = _spec(kind)
    return {
        "kind": gr.update(value=kind),
        "provider": gr.update(value=provider or "auto", visible=spec.has_provider),
        "base_url": gr.update(value=base_url, visible=spec.needs_url),
        "api_key": gr.update(visible=spec.takes_api_key),
    }


def list_server_models(model: str, base_url: str, api_key: str) -> Any:
    """The models an OpenAI-compatible server lists at ``/models``, as choices of the model dropdown."""
    try:
        names = inference.list_models(inference.Backend("openai", model or "?", base_url), api_key or None)
    except inference.InferenceError as exc:
        warn(exc.message)
        return gr.update()
    if not names:
        gr.Warning("The server did not list any models at /models: type the model name yourself.")
        return gr.update()
    gr.Info(f"{len(names)} model(s) on the server.")
    return gr.update(choices=names, value=model if model in names else names[0])


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
        kind_dd = gr.Dropdown(choices=KIND_CHOICES, value=kind, label="Runs on")
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
        if suggestions is None:
            kind_dd.change(lambda k: visibility(k)[:3], inputs=kind_dd, outputs=[provider, base_url, api_key])
        else:
            kind_dd.change(visibility, inputs=kind_dd, outputs=[provider, base_url, api_key, list_btn])
            list_btn.click(list_server_models, inputs=[model, base_url, api_key], outputs=[model])
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

    def updates(self, kind: str, model: str, base_url: str = "", provider: str = "auto") -> dict[Any, Any]:
        """``{component: gr.update}`` that set this picker to a backend (e.g. "Use this judge")."""
        by_name = kind_updates(kind, base_url, provider)
        return {
            self.kind: by_name["kind"],
            self.model: gr.update(value=model),
            self.provider: by_name["provider"],
            self.base_url: by_name["base_url"],
            self.api_key: by_name["api_key"],
        }
