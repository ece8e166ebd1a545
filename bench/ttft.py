"""Benchmark: time to first token through the app's streaming path vs a raw HTTP client, same server, one run.

Starts a loopback OpenAI-compatible streaming server (``tests/fixtures/faulty_server.FakeLLMServer``, no faults,
``--latency`` seconds before the first byte), then alternates, ``--runs`` times each:

- ``app``: ``pipeline.inference.stream_chat`` (what the Playground uses: validation, concurrency slot, retries,
  ``huggingface_hub.InferenceClient``, SSE parsing) from the call until the first text delta is yielded;
- ``raw``: a persistent ``httpx.Client`` POSTing the same request with ``stream: true`` until the first SSE line
  that carries text.

Prints one JSON line last with the medians and ``overhead_ms`` = median(app) - median(raw). Goal: overhead_ms <= 20.
Usage: ``python bench/ttft.py [--runs 60] [--latency 0.02]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from pipeline.inference import Backend, GenParams, build_messages, stream_chat
from tests.fixtures.faulty_server import FakeLLMServer

REPLY = "Amsterdam is de hoofdstad van Nederland, en Den Haag is de zetel van de regering."
MESSAGES = build_messages("Wat is de hoofdstad van Nederland?", "Antwoord altijd in het Nederlands.")
PARAMS = GenParams(max_new_tokens=64, temperature=0.7, top_p=0.95)


def ttft_app(backend: Backend) -> float:
    started = time.perf_counter()
    stream = stream_chat(backend, MESSAGES, PARAMS, None)
    try:
        for event in stream:
            if event.kind == "delta" and event.delta:
                return time.perf_counter() - started
    finally:
        stream.close()
    raise RuntimeError("no text")


def ttft_raw(client: httpx.Client, url: str) -> float:
    body = {
        "model": "fake-model",
        "messages": MESSAGES,
        "max_tokens": PARAMS.max_new_tokens,
        "temperature": PARAMS.temperature,
        "top_p": PARAMS.top_p,
        "stream": True,
    }
    started = time.perf_counter()
    with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data:") and line.strip() != "data: [DONE]":
                delta = json.loads(line[5:])["choices"][0]["delta"].get("content")
                if delta:
                    return time.perf_counter() - started
    raise RuntimeError("no text")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--latency", type=float, default=0.02, help="server delay before the first byte (s)")
    args = parser.parse_args()
    latency = args.latency
    with FakeLLMServer(responder=lambda r: REPLY, latency=lambda: latency, record=False) as server:
        backend = Backend("openai", "fake-model", server.base_url)
        url = f"{server.base_url}/chat/completions"
        with httpx.Client(timeout=30) as client:
            for _ in range(3):  # warm up both paths (imports, connection pools)
                ttft_app(backend)
                ttft_raw(client, url)
            app_s, raw_s = [], []
            for i in range(args.runs):
                if i % 2:
                    app_s.append(ttft_app(backend))
                    raw_s.append(ttft_raw(client, url))
                else:
                    raw_s.append(ttft_raw(client, url))
                    app_s.append(ttft_app(backend))
    app_ms = statistics.median(app_s) * 1000
    raw_ms = statistics.median(raw_s) * 1000
    result = {
        "bench": "ttft",
        "runs": args.runs,
        "server_latency_ms": round(latency * 1000, 1),
        "app_ttft_ms": round(app_ms, 2),
        "raw_ttft_ms": round(raw_ms, 2),
        "app_p90_ms": round(sorted(app_s)[int(0.9 * len(app_s)) - 1] * 1000, 2),
        "raw_p90_ms": round(sorted(raw_s)[int(0.9 * len(raw_s)) - 1] * 1000, 2),
        "overhead_ms": round(app_ms - raw_ms, 2),
        "goal_overhead_ms": 20,
    }
    print(f"app (stream_chat) median {app_ms:.2f} ms, raw httpx median {raw_ms:.2f} ms", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
