"""DPO Studio logic: everything the app and the CLI do, importable without Gradio.

Each outside service sits behind one module:

- ``pipeline.core.hub``        – the Hugging Face Hub (datasets, repos, whoami)
- ``pipeline.inference``  – LLM inference (HF Inference Providers, endpoints, OpenAI-compatible servers)
- ``pipeline.argilla`` – Argilla
- ``pipeline.langcheck`` – the language check (langid, heliport, a Hub fastText model; a script check)

Nothing else talks to those services directly.
"""

__version__ = "0.1.0"
