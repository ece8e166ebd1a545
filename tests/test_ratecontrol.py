"""The adaptive concurrency controller (pipeline.inference.ratecontrol) and how inference calls use it.

The rule (``Aimd``) is driven with a fake clock; the controller's slots and the retry loop against the
error-injecting server (tests/fixtures/faulty_server.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pipeline import inference
from pipeline.inference import AsyncChat, Backend, GenParams, InferenceError, RetryPolicy, achat, ratecontrol
from pipeline.inference.ratecontrol import IDLE_RESET_S, Aimd, RateController
from tests.fixtures.faulty_server import FakeLLMServer, Fault

MESSAGES = [{"role": "user", "content": "Hallo"}]
FAST = RetryPolicy(max_attempts=3, max_total_s=20, base_backoff_s=0.01, max_backoff_s=0.05)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def backend_of(server: FakeLLMServer) -> Backend:
    return Backend("openai", "fake-model", server.base_url)


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def adaptive_on():
    ratecontrol.set_adaptive(True)
    yield
    ratecontrol.set_adaptive(True)


# --- the rule --------------------------------------------------------------------------------------------------
def test_starts_at_the_users_setting_and_never_grows_past_it():
    clock = Clock()
    aimd = Aimd(8, clock=clock)
    assert aimd.limit == 8
    for _ in range(50):
        aimd.on_success(clock.now, clock.now + 0.3, queued=True)
    assert aimd.limit == 8


def test_a_burst_of_refusals_is_one_multiplicative_cut_then_one_slot_per_refused_call():
    clock = Clock()
    aimd = Aimd(64, clock=clock)
    sent = clock.now
    clock.now += 0.01
    aimd.on_throttle(sent, clock.now, retry_after=0.05)  # the first refusal of the burst: cut by half
    assert aimd.limit == 32
    for _ in range(9):  # 9 more refusals of calls sent in the same burst: one slot each off the level before it
        aimd.on_throttle(sent, clock.now, retry_after=0.05)
    assert aimd.limit == 32  # 64 - 10 = 54 is above the cut: the cut stands, no cascade
    for _ in range(30):
        aimd.on_throttle(sent, clock.now, retry_after=0.05)
    assert aimd.limit == 24  # 64 - 40 refused: about what the provider took
    assert aimd.refused == 40


def test_a_new_event_cuts_again_but_refusals_from_before_the_cut_do_not():
    clock = Clock()
    aimd = Aimd(20, clock=clock)
    aimd.on_throttle(clock.now, clock.now, retry_after=1.0)
    assert aimd.limit == 10
    clock.now += 2
    aimd.on_throttle(clock.now - 3, clock.now, retry_after=1.0)  # sent before that cut: same event
    assert aimd.limit == 10
    aimd.on_throttle(clock.now - 0.1, clock.now, retry_after=1.0)  # sent after it: a new event
    assert aimd.limit == 5


def test_retry_after_pauses_the_key():
    clock = Clock()
    aimd = Aimd(10, clock=clock)
    aimd.on_throttle(clock.now, clock.now, retry_after=2.0)
    assert aimd.paused_for() == pytest.approx(2.0)
    clock.now += 2.5
    assert aimd.paused_for() == 0


def test_a_bare_429_among_successes_costs_half_a_slot_but_many_cut_hard():
    clock = Clock()
    aimd = Aimd(20, clock=clock)
    for _ in range(40):
        aimd.on_success(clock.now, clock.now, queued=True)
    aimd.on_throttle(clock.now, clock.now)  # no Retry-After, one refusal among 40 successes: maybe noise
    assert aimd.allowed == pytest.approx(19.5)
    for _ in range(20):  # most recent calls refused: that is a limit, not noise
        aimd.on_throttle(clock.now, clock.now)
    assert aimd.limit < 10


def test_an_overloaded_503_is_certain_without_retry_after():
    clock = Clock()
    aimd = Aimd(20, clock=clock)
    aimd.on_throttle(clock.now, clock.now, certain=True)
    assert aimd.limit == 10 and aimd.paused_for() == 0


def test_grows_back_quickly_to_near_the_cut_then_probes_slowly():
    clock = Clock()
    aimd = Aimd(40, clock=clock)
    aimd.on_throttle(clock.now, clock.now, retry_after=0.1)  # cut from 40 to 20
    successes_to = {}
    successes = 0
    while aimd.limit < 40 and successes < 20_000:
        aimd.on_success(clock.now, clock.now, queued=True)
        successes += 1
        successes_to.setdefault(aimd.limit, successes)
    assert aimd.limit == 40
    fast = (successes_to[35] - successes_to[21]) / 14  # per slot, growing back below the level of the cut
    slow = successes_to[38] - successes_to[37]  # one slot near that level
    assert slow > 5 * fast  # probing for more is several times slower than growing back


def test_growth_only_while_calls_are_queueing():
    clock = Clock()
    aimd = Aimd(16, clock=clock)
    aimd.on_throttle(clock.now, clock.now, retry_after=0.1)
    for _ in range(500):
        aimd.on_success(clock.now, clock.now, queued=False)
    assert aimd.limit == 8


def test_an_idle_key_starts_at_the_setting_again():
    clock = Clock()
    aimd = Aimd(16, clock=clock)
    aimd.on_throttle(clock.now, clock.now, retry_after=0.1)
    assert aimd.limit == 8
    clock.now += IDLE_RESET_S + 1
    aimd.touch(clock.now)
    assert aimd.limit == 16


def test_raising_the_setting_follows_unless_throttled():
    clock = Clock()
    aimd = Aimd(8, clock=clock)
    aimd.set_ceiling(32)
    assert aimd.limit == 32
    aimd.on_throttle(clock.now, clock.now, retry_after=0.1)
    aimd.set_ceiling(64)
    assert aimd.limit == 16 and aimd.ceiling == 64
    aimd.set_ceiling(4)
    assert aimd.limit == 4


def test_off_keeps_the_fixed_limit():
    ratecontrol.set_adaptive(False)
    clock = Clock()
    aimd = Aimd(8, clock=clock)
    aimd.on_throttle(clock.now, clock.now, retry_after=5)
    assert aimd.limit == 8 and aimd.paused_for() == 0 and aimd.refused == 1


# --- the controller's slots ----------------------------------------------------------------------------------
def test_a_pause_holds_new_calls_until_retry_after_passes():
    controller = RateController(4)
    controller.throttled(0.0, retry_after=0.3)
    assert controller.allowed == 2 and controller.in_use == 0
    assert controller.acquire(timeout=0) is False  # paused: nobody gets a slot now, though slots are free
    assert controller.acquire(timeout=10) is True  # granted when the pause ends (a timer wakes the queue)
    controller.release()
    state = controller.state()
    assert state.in_flight == 0 and state.refused == 1 and state.paused_s == 0


def test_a_cut_below_the_calls_in_flight_lets_them_finish_and_holds_new_ones():
    controller = RateController(4)
    for _ in range(4):
        assert controller.acquire(timeout=0)
    controller.throttled(1e12, retry_after=None, certain=True)  # cut to 2
    assert controller.allowed == 2
    controller.release()
    controller.release()
    assert controller.acquire(timeout=0) is False  # 2 still in flight = allowed
    controller.release()
    assert controller.acquire(timeout=0) is True


# --- keys ------------------------------------------------------------------------------------------------------
def test_serverless_users_have_separate_controllers_and_the_key_holds_no_token():
    backend = Backend("serverless", "org/key-test-model")
    alice, bob = "hf_alice_secret_token", "hf_bob_secret_token"
    assert inference.limiter_for(backend, alice) is inference.limiter_for(backend, alice)
    assert inference.limiter_for(backend, alice) is not inference.limiter_for(backend, bob)
    key = inference.controller_key(backend, alice)
    assert alice not in repr(key) and ratecontrol.credential_key(alice) in key


def test_a_shared_server_has_one_controller_for_everyone():
    endpoint = Backend("endpoint", "", "https://xyz.endpoints.huggingface.cloud")
    assert inference.limiter_for(endpoint, "hf_a") is inference.limiter_for(endpoint, "hf_b")
    keyless = Backend("openai", "m", "http://127.0.0.1:9/v1")
    assert inference.limiter_for(keyless, None) is inference.limiter_for(keyless, "")
    # an API key is an account on that server (hosted OpenAI-compatible APIs limit each key)
    assert inference.limiter_for(keyless, "key-a") is not inference.limiter_for(keyless, "key-b")


# --- calls ------------------------------------------------------------------------------------------------------
def test_429s_are_waits_not_attempts(faulty_server):
    faulty_server.add_faults(*[Fault.status(429, retry_after=0.01)] * 6)  # more than FAST's 3 attempts
    result = run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST))
    assert result.text.startswith("Echo:")
    assert result.attempts == 7 and faulty_server.chat_requests == 7


def test_other_failures_still_count_as_attempts(faulty_server):
    faulty_server.add_faults(Fault.status(429, retry_after=0.01), *[Fault.status(500)] * 5)
    with pytest.raises(InferenceError) as info:
        run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST))
    assert info.value.kind == "server" and faulty_server.chat_requests == 4  # 1 wait + 3 attempts


def test_waiting_is_bounded_by_the_wait_budget(faulty_server):
    faulty_server.add_faults(*[Fault.status(429, retry_after=0.2)] * 50)
    policy = RetryPolicy(max_attempts=3, max_total_s=60, max_wait_s=0.5)
    with pytest.raises(InferenceError) as info:
        run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=policy))
    error = info.value
    assert error.kind == "throttled" and not error.retryable
    assert "waited 0.4 s" in error.message and "limit of 0.5 s" in error.message
    assert faulty_server.chat_requests == 3  # waited 0.2 + 0.2; a third wait would pass 0.5 s


def test_a_call_waiting_to_retry_holds_no_slot():
    """Limit 1: while the first call waits to retry after a 429, a second call gets the slot and is answered."""
    slow_backoff = RetryPolicy(max_attempts=3, max_total_s=60, base_backoff_s=2.0, max_backoff_s=2.0)
    with FakeLLMServer() as server:
        backend = backend_of(server)
        inference.set_concurrency_limit(backend, 1)
        server.add_faults(Fault.status(429))  # no Retry-After: the call backs off 1-2 s, the key is not paused
        try:

            async def both():
                async with AsyncChat(backend, None, retry=slow_backoff) as chat:
                    first = asyncio.create_task(chat([{"role": "user", "content": "first"}]))
                    while server.chat_requests < 1 or inference.limiter_for(backend).in_use:
                        await asyncio.sleep(0.005)
                    second = await chat([{"role": "user", "content": "second"}])
                    return await first, second

            first, second = run(both())
        finally:
            inference.set_concurrency_limit(backend, 32)
        assert first.text == "Echo: first" and second.text == "Echo: second"
        assert [r.json["messages"][0]["content"] for r in server.requests] == ["first", "second", "first"]
        assert inference.limiter_for(backend).in_use == 0


def test_the_run_gate_is_left_while_waiting(faulty_server):
    """The caller's own slot (``gate``) is held only while a request is on the wire."""
    faulty_server.add_faults(Fault.status(429, retry_after=0.05), Fault.status(503))
    entries: list[str] = []

    class Gate:
        async def __aenter__(self):
            entries.append("in")

        async def __aexit__(self, *exc):
            entries.append("out")

    async def call():
        async with AsyncChat(backend_of(faulty_server), None, retry=FAST) as chat:
            return await chat(MESSAGES, gate=Gate)

    result = run(call())
    assert result.attempts == 3
    assert entries == ["in", "out"] * 3  # entered for each request, left before each wait


def test_402_is_out_of_credit_and_not_retried(faulty_server):
    faulty_server.add_faults(Fault.status(402))
    with pytest.raises(InferenceError) as info:
        run(achat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=FAST))
    error = info.value
    assert error.kind == "out_of_credit" and faulty_server.chat_requests == 1
    assert "credits" in error.message and "resume" in error.message


def test_a_quota_message_on_429_is_out_of_credit_too():
    backend = Backend("serverless", "org/m")
    error = inference.http_error(429, backend, "You exceeded your current quota, please check your plan")
    assert error.kind == "out_of_credit" and not error.retryable
    assert "organisation" in error.message and "another provider" in error.message
    assert inference.http_error(429, backend, "Rate limit reached").kind == "rate_limited"


def test_an_overloaded_503_cuts_the_limit(faulty_server):
    backend = backend_of(faulty_server)
    inference.set_concurrency_limit(backend, 8)
    try:
        faulty_server.add_faults(Fault.status(503, message="The server is overloaded, try again later"))
        result = run(achat(backend, MESSAGES, GenParams(), None, retry=FAST))
        assert result.attempts == 2
        assert inference.controller_state(backend).allowed == 4
    finally:
        inference.set_concurrency_limit(backend, 32)


def test_two_threads_share_one_controller_safely():
    controller = RateController(3)
    granted = []

    def worker():
        for _ in range(50):
            with controller.slot():
                granted.append(controller.in_use)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(granted) == 200 and max(granted) <= 3 and controller.in_use == 0
