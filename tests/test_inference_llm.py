"""pipeline.inference and the Playground against real llama.cpp servers (SmolLM2-135M-Instruct).

The model is tiny: replies are real but short and often wrong, so these tests check the plumbing (text, usage,
streaming, statistics, errors, language check on real output), not the content."""

from __future__ import annotations

import asyncio

import pytest

from pipeline import langcheck
from pipeline.inference import Backend, GenParams, InferenceError, achat, build_messages, stream_chat
from pipeline.playground import compare

PARAMS = GenParams(max_new_tokens=24, temperature=0.0, seed=1)
MESSAGES = build_messages(
    "What is the capital of France? Answer in one sentence.", "You are a helpful assistant. Always answer in English."
)


def test_chat_non_streaming(llm_server):
    result = asyncio.run(achat(llm_server.backend(), MESSAGES, PARAMS, None))
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")
    assert 0 < result.completion_tokens <= 24 and result.prompt_tokens > 10


def test_chat_streaming_matches_non_streaming_and_has_stats(llm_server):
    events = list(stream_chat(llm_server.backend(), MESSAGES, PARAMS, None))
    final = events[-1]
    assert final.kind == "done" and sum(e.kind == "delta" for e in events) >= 2
    assert final.text == "".join(e.delta for e in events if e.kind == "delta")
    assert final.ttft_s > 0 and final.tokens_per_s > 0 and final.completion_tokens > 1
    again = asyncio.run(achat(llm_server.backend(), MESSAGES, PARAMS, None))
    assert again.text == final.text  # temperature 0 and a seed: same text either way


def test_two_models_side_by_side_with_language_check(llm_servers):
    requests = [compare.ColumnRequest(letter, server.backend()) for letter, server in zip("AB", llm_servers)]
    requests.append(compare.ColumnRequest("C", None))
    final = list(compare.run_columns(requests, MESSAGES, PARAMS, "eng"))[-1]
    a, b, c = final
    assert a.status == b.status == "done" and c.status == "idle"
    assert a.label.startswith("smollm2-a") and b.label.startswith("smollm2-b")
    for state in (a, b):
        assert state.text.strip() and state.ttft_s is not None
        assert state.check is not None and state.check.detected is not None
        assert state.check == langcheck.check(state.text, "eng")  # checked on the real output
        assert state.check.match is (state.check.detected == "eng")


def test_prompt_too_long_for_the_context(llm_server):
    long_prompt = build_messages("word " * 2500)
    with pytest.raises(InferenceError) as info:
        asyncio.run(achat(llm_server.backend(), long_prompt, PARAMS, None))
    assert info.value.kind == "too_long"
    assert "max new tokens" in info.value.message and llm_server.model in info.value.message
    # llama.cpp's server answers a too-long *streaming* request with 200 and an empty body: still an error
    with pytest.raises(InferenceError) as info:
        list(stream_chat(llm_server.backend(), long_prompt, PARAMS, None))
    assert info.value.kind == "bad_response"
    assert "shorten the prompt" in info.value.message


def test_wrong_path_is_not_an_llm_server(llm_server):
    backend = Backend("openai", llm_server.model, f"{llm_server.root_url}/nothing-here")
    with pytest.raises(InferenceError) as info:
        list(stream_chat(backend, MESSAGES, PARAMS, None))
    assert info.value.kind == "not_found"
    assert "base URL" in info.value.message
