"""One reusable backend picker: where a model runs (HF Inference Providers, an Inference Endpoint, or any
OpenAI-compatible server), its model id, provider, base URL and API key — for the Pipeline's generators and judge
(and any tab that needs a model). Wiring only: the choices come from :mod:`pipeline.inference`, and the values are
read as a mapping with :meth:`BackendPicker.fields` (the key names of ``RunSettings.from_mapping``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from pipeline import inference

__all__ = ["KIND_CHOICES", "BackendPicker"]

KIND_CHOICES = [
    ("HF Inference Providers (serverless, sign-in)", "serverless"),
    ("HF Inference Endpoint (URL)", "endpoint"),
    ("OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp)", "openai"),
]


def visibility(kind: str) -> tuple[Any, Any, Any]:
    """(provider, base URL, API key) visibility for a backend kind."""
    return (gr.update(visible=kind == "serverless"), gr.update(visible=kind != "serverless"),
            gr.update(visible=kind == "openai"))


@dataclass
class BackendPicker:
    """The components of one picker. Build it with :meth:`build` inside a layout block."""

    kind: Any
    model: Any
    provider: Any
    base_url: Any
    api_key: Any

    @classmethod
    def build(cls, model_label: str, default_model: str = "", lines: int = 1, kind: str = "serverless") -> BackendPicker:
        kind_dd = gr.Dropdown(choices=KIND_CHOICES, value=kind, label="Runs on")
        model = gr.Textbox(label=model_label, value=default_model, lines=lines, max_lines=8)
        provider = gr.Dropdown(choices=list(inference.PROVIDERS), value="auto", label="Provider",
                               info="auto = the first available in your Hugging Face settings order.",
                               visible=kind == "serverless")
        base_url = gr.Textbox(label="Base URL", placeholder="http://127.0.0.1:8080/v1", visible=kind != "serverless")
        api_key = gr.Textbox(label="API key (optional)", type="password", visible=kind == "openai",
                             info="Sent to this server only, per call; never stored or shown again.")
        picker = cls(kind_dd, model, provider, base_url, api_key)
        kind_dd.change(visibility, inputs=kind_dd, outputs=[provider, base_url, api_key])
        return picker

    def fields(self, prefix: str = "", model_key: str = "model") -> dict[str, Any]:
        """The components by ``RunSettings.from_mapping`` key: ``{prefix}kind``, ``{prefix}model`` (or
        ``model_key``), ``{prefix}provider``, ``{prefix}base_url``, ``{prefix}api_key``."""
        return {f"{prefix}kind": self.kind, model_key if not prefix else f"{prefix}model": self.model,
                f"{prefix}provider": self.provider, f"{prefix}base_url": self.base_url,
                f"{prefix}api_key": self.api_key}

    def updates(self, kind: str, model: str, base_url: str = "", provider: str = "auto") -> dict[Any, Any]:
        """``{component: gr.update}`` that set this picker to a backend (e.g. "Use this judge")."""
        prov, url, key = visibility(kind)
        return {self.kind: gr.update(value=kind), self.model: gr.update(value=model),
                self.provider: gr.update(value=provider or "auto", visible=kind == "serverless"),
                self.base_url: gr.update(value=base_url, visible=kind != "serverless"), self.api_key: key}
