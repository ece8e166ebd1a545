"""Test set-up shared by every test. Service fixtures live in tests/fixtures/ (one module per stand-in):

- ``fakehub``       – a faithful fake of the Hub's HTTP API on 127.0.0.1 (``HF_ENDPOINT``)
- ``llm_server``    – llama.cpp's OpenAI-compatible server with SmolLM2-135M-Instruct
- ``faulty_server`` – a loopback OpenAI-compatible server that injects errors (429, 503, 500, time-outs, ...)
- ``argilla_stack`` – argilla-server 2.8 + Redis + osmem (OpenSearch emulator)

Services are installed by scripts/services.sh (run by scripts/test) and started/stopped by these fixtures.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# No test may reach the internet, use the developer's token, or send analytics.
_TMP = Path(tempfile.mkdtemp(prefix="dpo-studio-tests-"))
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ["GRADIO_TEMP_DIR"] = str(_TMP / "gradio")
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["HF_HOME"] = str(_TMP / "hf-home")
os.environ["HF_DATASETS_CACHE"] = str(_TMP / "hf-datasets")
os.environ.setdefault("DPO_STUDIO_DATA_DIR", str(_TMP / "data"))
for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_API_TOKEN", "ARGILLA_API_KEY", "ARGILLA_API_URL"):
    os.environ.pop(var, None)
# The real Hub is never reachable from tests; tests that need one use the fake_hub fixture (which sets HF_ENDPOINT).
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = Path(os.environ.get("DPO_STUDIO_TEST_OUTPUT", ROOT / "test-output"))
SERVICES = Path(os.environ.get("DPO_STUDIO_SERVICES", Path.home() / ".cache" / "dpo-studio"))

pytest_plugins = [
    "tests.fixtures.fakehub",
    "tests.fixtures.llm_server",
    "tests.fixtures.faulty_server",
    "tests.fixtures.argilla_stack",
    "tests.fixtures.app_server",
    "tests.fixtures.space_app",
]
