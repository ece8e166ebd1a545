"""pipeline.inference against the fault-injecting loopback server: retries, limits, messages, streaming."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from pipeline import inference
from pipeline.inference import (
    NO_RETRY,
    Backend,
    ConcurrencyLimiter,
    GenParams,
    InferenceError,
    RetryPolicy,
    achat,
    build_messages,
    stream_chat,
)
from tests.fixtures.faulty_server import FakeLLMServer, Fault

FAST = RetryPolicy(max_attempts=4, max_total_s=20, base_backoff_s=0.01, max_backoff_s=0.05)
MESSAGES = build_messages("Wat is de hoofdstad van Nederland?", "Antwoord in het Nederlands.")


def backend_of(server: FakeLLMServer, model: str = "fake-model") -> Backend:
    return Backend("openai", model, server.base_url)


def run(coro):
    return asyncio.run(coro)


# --- success and auth headers ------------------------------------------------------------------------------------
def test_chat_returns_text_usage_and_sends_params(faulty_server):
    result = run(
        achat(
            backend_of(faulty_server), MESSAGES, GenParams(max_new_tokens=64, temperature=0.2, top_p=0.5, seed=7), None
        )
    )
    assert result.text == "Echo: Wat is de hoofdstad van Nederland?"
    assert result.finish_reason == "stop"
    assert result.completion_tokens == 7 and result.prompt_tokens == 10
    assert result.attempts == 1
    sent = faulty_server.requests[-1].json
    assert sent["model"] == "fake-model"
    assert sent["messages"] == MESSAGES
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"], sent["seed"]) == (64, 0.2, 0.5, 7)


def test_no_key_sends_no_authorization_even_with_a_machine_token(faulty_server, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_machine_secret_token")
    run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None))
    list(stream_chat(backend_of(faulty_server), MESSAGES, GenParams(), None))
    assert len(faulty_server.requests) == 2
    for request in faulty_server.requests:
        assert "authorization" not in request.headers
        assert "hf_machine_secret_token" not in repr(request.headers)


def test_key_is_sent_as_bearer(faulty_server):
    run(achat(backend_of(faulty_server), MESSAGES, GenParams(), "sk-local-123"))
    assert faulty_server.requests[-1].headers["authorization"] == "Bearer sk-local-123"


def test_serverless_without_sign_in_says_sign_in_and_sends_nothing():
    with pytest.raises(InferenceError) as info:
        run(achat(Backend("serverless", "Qwen/Qwen2.5-72B-Instruct"), MESSAGES, GenParams(), None))
    assert info.value.kind == "auth"
    assert "sign in" in info.value.message.lower()
    assert "HF_TOKEN for the CLI" in info.value.message  # right in the app and the CLI alike
    assert "button" not in info.value.message  # where a button is depends on the app (sign-in may be off)
    assert "Qwen/Qwen2.5-72B-Instruct" in info.value.message
    with pytest.raises(InferenceError) as info:
        list(stream_chat(Backend("serverless", "Qwen/Qwen2.5-72B-Instruct"), MESSAGES, GenParams(), None))
    assert info.value.kind == "auth"


def test_empty_prompt_is_refused_before_sending(faulty_server):
    with pytest.raises(InferenceError) as info:
        run(achat(backend_of(faulty_server), build_messages("   "), GenParams(), None))
    assert info.value.kind == "bad_request" and "empty" in info.value.message
    assert faulty_server.chat_requests == 0


def test_bad_base_url_is_refused():
    with pytest.raises(InferenceError) as info:
        run(achat(Backend("openai", "m", "localhost:8000"), MESSAGES, GenParams(), None))
    assert info.value.kind == "bad_request" and "not a URL" in info.value.message


# --- retries -----------------------------------------------------------------------------------------------------
def test_retries_transient_failures_then_succeeds(faulty_server):
    faulty_server.add_faults(Fault.status(503), Fault.status(500), Fault.malformed_json())
    result = run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST))
    assert result.text.startswith("Echo:")
    assert result.attempts == 4
    assert faulty_server.chat_requests == 4


def test_429_retry_after_is_honoured(faulty_server):
    faulty_server.add_faults(Fault.status(429, retry_after=0.6))
    result = run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST))
    assert result.attempts == 2
    first, second = faulty_server.requests[0].at, faulty_server.requests[1].at
    assert second - first >= 0.55  # waited as asked, not the policy's 0.01-0.05 s backoff


def test_retry_after_beyond_the_time_budget_gives_up_at_once(faulty_server):
    faulty_server.add_faults(Fault.status(429, retry_after=30))
    with pytest.raises(InferenceError) as info:
        run(
            achat(
                backend_of(faulty_server), MESSAGES, GenParams(), None, retry=RetryPolicy(max_attempts=5, max_total_s=5)
            )
        )
    assert info.value.kind == "throttled" and info.value.status == 429  # the wait budget (max_total_s here) is spent
    assert "30 s" in info.value.message and "rate limited" in info.value.message
    assert faulty_server.chat_requests == 1


def test_gives_up_after_max_attempts_with_a_clear_message(faulty_server):
    faulty_server.add_faults(*[Fault.status(500)] * 10)
    with pytest.raises(InferenceError) as info:
        run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST))
    error = info.value
    assert error.kind == "server" and error.status == 500 and error.retryable
    assert "gave up after 4 attempts" in error.message
    assert "fake-model" in error.message and faulty_server.base_url in error.message
    assert faulty_server.chat_requests == 4


def test_timeouts_are_retried_and_reported(faulty_server):
    faulty_server.add_faults(Fault.delay(1.5))
    result = run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST, timeout=0.4))
    assert result.attempts == 2
    faulty_server.add_faults(Fault.delay(1.5))
    with pytest.raises(InferenceError) as info:
        run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=NO_RETRY, timeout=0.4))
    assert info.value.kind == "timeout" and "time-out" in info.value.message


def test_not_an_llm_server_is_a_bad_response(faulty_server):
    faulty_server.add_faults(*[Fault.html()] * 4)
    with pytest.raises(InferenceError) as info:
        run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST))
    assert info.value.kind == "bad_response"
    assert "OpenAI-compatible" in info.value.message


def test_connection_refused_is_a_connection_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(InferenceError) as info:
        run(
            achat(
                Backend("openai", "m", f"http://127.0.0.1:{port}/v1"),
                MESSAGES,
                GenParams(),
                None,
                retry=RetryPolicy(max_attempts=2, base_backoff_s=0.01, max_backoff_s=0.02),
            )
        )
    assert info.value.kind == "connection"
    assert "cannot connect" in info.value.message and "gave up after 2 attempts" in info.value.message


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        (Fault.status(401), "auth", "API key"),
        (Fault.status(403), "forbidden", "access denied"),
        (Fault.status(404), "not_found", "Check the model name"),
        (Fault.status(422), "bad_request", "rejected the request"),
        (
            Fault.status(400, message="Requested tokens (9000) exceed context window of 2048"),
            "too_long",
            "Lower 'max new tokens' or shorten the prompt",
        ),
    ],
)
def test_client_errors_surface_at_once(faulty_server, fault, kind, words):
    faulty_server.add_faults(fault)
    with pytest.raises(InferenceError) as info:
        run(achat(backend_of(faulty_server), MESSAGES, GenParams(), "sk-x", retry=FAST))
    assert info.value.kind == kind and info.value.status == fault.code
    assert not info.value.retryable
    assert words in info.value.message and "fake-model" in info.value.message
    assert faulty_server.chat_requests == 1  # no retry


def test_too_long_from_the_servers_own_context_check():
    with FakeLLMServer(max_context=50) as server:
        with pytest.raises(InferenceError) as info:
            run(achat(backend_of(server), build_messages("word " * 100), GenParams(max_new_tokens=10), None))
    assert info.value.kind == "too_long"


def test_serverless_messages_say_what_to_do():
    backend = Backend("serverless", "meta-llama/Llama-3.3-70B-Instruct")
    gated = inference.http_error(403, backend, "gated")
    assert "request access on https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct" in gated.message
    missing = inference.http_error(404, backend)
    assert "Check the model id" in missing.message
    expired = inference.http_error(401, backend, signed_in=True)
    assert "sign out and in again" in expired.message
    signed_out = inference.http_error(401, backend, signed_in=False).message
    assert signed_out.count("Sign in") == 1 and "button" not in signed_out and "HF_TOKEN" in signed_out


# --- streaming ---------------------------------------------------------------------------------------------------
def test_stream_yields_deltas_then_a_final_event(faulty_server):
    events = list(stream_chat(backend_of(faulty_server), MESSAGES, GenParams(), None))
    deltas = [e for e in events if e.kind == "delta"]
    final = events[-1]
    assert final.kind == "done" and len(deltas) == 7
    assert "".join(e.delta for e in deltas) == final.text == "Echo: Wat is de hoofdstad van Nederland?"
    assert final.ttft_s is not None and final.ttft_s > 0
    assert final.tokens_per_s is not None and final.tokens_per_s > 0
    assert final.completion_tokens == 7 and final.finish_reason == "stop"
    assert faulty_server.requests[-1].json["stream"] is True


def test_stream_cut_by_max_tokens_reports_length():
    with FakeLLMServer(responder=lambda r: "one two three four five six") as server:
        final = list(stream_chat(backend_of(server), MESSAGES, GenParams(max_new_tokens=3), None))[-1]
    assert final.finish_reason == "length" and final.text == "one two three"


@pytest.mark.parametrize(
    ("fault", "kind", "words"),
    [
        (Fault.broken_stream(3), "connection", "connection dropped"),
        (Fault.truncated_stream(3), "bad_response", "ended without finishing"),
        (Fault.malformed_json(), "bad_response", "not a valid chat completion"),
        (Fault.stream_error("CUDA out of memory", after_chunks=2), "server", "CUDA out of memory"),
    ],
)
def test_broken_streams_keep_the_text_and_explain(faulty_server, fault, kind, words):
    faulty_server.add_faults(fault)
    got = []
    with pytest.raises(InferenceError) as info:
        for event in stream_chat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST):
            got.append(event.delta)
    assert info.value.kind == kind
    assert words in info.value.message
    assert got and "".join(got).startswith("Echo:")  # what arrived was shown
    assert faulty_server.chat_requests == 1  # after text was shown, no silent replay


def test_stream_failing_before_the_first_token_is_retried(faulty_server):
    faulty_server.add_faults(Fault.status(503), Fault.broken_stream(0))
    events = list(stream_chat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST))
    assert events[-1].kind == "done" and events[-1].text.startswith("Echo:")
    assert faulty_server.chat_requests == 3


def test_stream_ending_before_any_text_is_an_error(faulty_server):
    faulty_server.add_faults(*[Fault.truncated_stream(0)] * 2)
    with pytest.raises(InferenceError) as info:
        list(
            stream_chat(
                backend_of(faulty_server),
                MESSAGES,
                GenParams(),
                None,
                retry=RetryPolicy(max_attempts=2, base_backoff_s=0.01, max_backoff_s=0.01),
            )
        )
    assert info.value.kind == "bad_response" and "before any text" in info.value.message
    assert faulty_server.chat_requests == 2  # retried once, then gave up


def test_stream_too_long_is_explained(faulty_server):
    faulty_server.add_faults(Fault.status(400, message="Requested tokens (3000) exceed context window of 2048"))
    with pytest.raises(InferenceError) as info:
        list(stream_chat(backend_of(faulty_server), MESSAGES, GenParams(), None))
    assert info.value.kind == "too_long" and "exceed context window" in info.value.message


def test_stream_client_error_surfaces_at_once(faulty_server):
    faulty_server.add_faults(Fault.status(404))
    with pytest.raises(InferenceError) as info:
        list(stream_chat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST))
    assert info.value.kind == "not_found"
    assert faulty_server.chat_requests == 1
    assert inference.limiter_for(backend_of(faulty_server)).in_use == 0  # the slot was given back


def test_closing_a_stream_early_frees_its_slot():
    with FakeLLMServer(responder=lambda r: "word " * 50, token_delay=0.01) as server:
        backend = backend_of(server)
        stream = stream_chat(backend, MESSAGES, GenParams(), None)
        next(stream)
        assert inference.limiter_for(backend).in_use == 1
        stream.close()
        assert inference.limiter_for(backend).in_use == 0


# --- concurrency limit -------------------------------------------------------------------------------------------
def test_limit_holds_across_tasks_threads_and_event_loops():
    with FakeLLMServer(latency=lambda: 0.15) as server:
        backend = backend_of(server)
        inference.set_concurrency_limit(backend, 2)
        try:

            async def many(n):
                return await asyncio.gather(*[achat(backend, MESSAGES, GenParams(), None) for _ in range(n)])

            results = []
            threads = [threading.Thread(target=lambda: results.append(asyncio.run(many(3)))) for _ in range(2)]
            threads.append(
                threading.Thread(
                    target=lambda: results.append([list(stream_chat(backend, MESSAGES, GenParams(), None))[-1]])
                )
            )
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert sum(len(r) for r in results) == 7
            assert server.chat_requests == 7
            assert server.max_in_flight == 2
            assert inference.limiter_for(backend).in_use == 0
        finally:
            inference.set_concurrency_limit(backend, 32)


def test_limiter_cancelled_waiters_do_not_leak_slots():
    limiter = ConcurrencyLimiter(1)

    async def scenario():
        await limiter.acquire_async()
        waiter = asyncio.create_task(limiter.acquire_async())
        await asyncio.sleep(0.01)
        assert limiter.waiting == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert limiter.waiting == 0
        limiter.release()
        assert limiter.in_use == 0
        # a waiter granted a slot and cancelled in the same breath gives it back
        await limiter.acquire_async()
        late = asyncio.create_task(limiter.acquire_async())
        await asyncio.sleep(0.01)
        limiter.release()  # grants the slot to `late`...
        late.cancel()  # ...which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await late
        assert limiter.in_use == 0 and limiter.waiting == 0

    run(scenario())


def test_limiter_raising_the_limit_wakes_waiters():
    limiter = ConcurrencyLimiter(1)
    limiter.acquire()
    got = threading.Event()
    thread = threading.Thread(target=lambda: (limiter.acquire(), got.set()))
    thread.start()
    assert not got.wait(0.05)
    limiter.set_limit(2)
    assert got.wait(5)
    thread.join()
    assert limiter.in_use == 2
    assert limiter.acquire(timeout=0.01) is False


def test_credentials_in_a_base_url_never_reach_messages():
    backend = Backend("openai", "m", "http://user:s3cret@127.0.0.1:1/v1?key=abc")
    assert "s3cret" not in backend.label and "abc" not in backend.label
    assert backend.label == "m on http://127.0.0.1:1/v1"
    with pytest.raises(InferenceError) as info:
        run(achat(backend, MESSAGES, GenParams(), None, retry=NO_RETRY))
    assert "s3cret" not in info.value.message and "abc" not in info.value.message


def test_default_caps_leave_room_for_many_users_on_serverless(monkeypatch):
    """Serverless calls spend each user's own quota: several users' runs (up to 64 at once each) are not squeezed
    into one small shared cap; a shared OpenAI-compatible server keeps a tighter one."""
    monkeypatch.delenv("DPO_STUDIO_MAX_CONCURRENCY", raising=False)
    assert inference.concurrency_limit(inference.Backend("serverless", "org/default-cap-model")) == 64
    assert inference.concurrency_limit(inference.Backend("openai", "m", base_url="http://127.0.0.1:7/v1")) == 32
    monkeypatch.setenv("DPO_STUDIO_MAX_CONCURRENCY", "5")
    assert inference.concurrency_limit(inference.Backend("serverless", "org/another-cap-model")) == 5
