"""The adaptive concurrency controller (pipeline.inference.ratecontrol) and how inference calls use it.

The rule (``Aimd``) is driven with a fake clock; the controller's slots and the retry loop against the
error-injecting server (tests/fixtures/faulty_server.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from pipeline import inference
from pipeline.inference import AsyncChat, Backend, GenParams, InferenceError, RetryPolicy, achat, ratecontrol
from pipeline.inference.ratecontrol import IDLE_RESET_S, MAX_PAUSE_S, SLOW_START_AT, Aimd, RateController
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
def rounds(aimd: Aimd, clock: Clock, n: int) -> list[int]:
    """``n`` rounds of calls while others queue: each round, every allowed call succeeds; the limit after each."""
    seen = []
    for _ in range(n):
        for _ in range(aimd.limit):
            aimd.on_success(clock.now, clock.now + 0.3, queued=True)
        clock.now += 0.3
        seen.append(aimd.limit)
    return seen


def test_a_new_key_starts_small_and_doubles_up_to_the_users_setting():
    clock = Clock()
    aimd = Aimd(64, clock=clock)
    assert aimd.limit == SLOW_START_AT == 4 and aimd.slow_start
    assert rounds(aimd, clock, 6) == [8, 16, 32, 64, 64, 64]  # doubles each round, never past the setting
    assert not aimd.slow_start


def test_slow_start_ends_at_the_first_throttle_then_growth_is_additive():
    clock = Clock()
    aimd = Aimd(64, clock=clock)
    rounds(aimd, clock, 2)
    assert aimd.limit == 16
    aimd.on_throttle(clock.now, clock.now, retry_after=0.5)
    assert aimd.limit == 9 and not aimd.slow_start and aimd.history
    clock.now += 1
    seen = rounds(aimd, clock, 4)
    assert seen[-1] > 9 and all(b - a <= 1 for a, b in zip([9, *seen], seen))  # about a slot a round, not doubling


def test_slow_start_waits_for_queueing_calls():
    clock = Clock()
    aimd = Aimd(64, clock=clock)
    for _ in range(100):
        aimd.on_success(clock.now, clock.now, queued=False)
    assert aimd.limit == SLOW_START_AT  # nobody waited for a slot: no reason to grow


def test_a_burst_of_refusals_is_one_multiplicative_cut_then_one_slot_per_refused_call():
    clock = Clock()
    aimd = Aimd(64, start=64, clock=clock)
    sent = clock.now
    clock.now += 0.01
    aimd.on_throttle(sent, clock.now, retry_after=0.05)  # the first refusal of the burst: cut to 0.6 × 64
    assert aimd.limit == 38
    for _ in range(9):  # 9 more refusals of calls sent in the same burst: one slot each off the level before it
        aimd.on_throttle(sent, clock.now, retry_after=0.05)
    assert aimd.limit == 38  # 64 - 10 = 54 is above the cut: the cut stands, no cascade
    for _ in range(30):
        aimd.on_throttle(sent, clock.now, retry_after=0.05)
    assert aimd.limit == 24  # 64 - 40 refused: about what the provider took
    assert aimd.refused == 40


def test_a_new_event_cuts_again_but_refusals_from_before_the_cut_do_not():
    clock = Clock()
    aimd = Aimd(20, start=20, clock=clock)
    aimd.on_throttle(clock.now, clock.now, retry_after=1.0)
    assert aimd.limit == 12
    clock.now += 2
    aimd.on_throttle(clock.now - 3, clock.now, retry_after=1.0)  # sent before that cut: same event
    assert aimd.limit == 12
    aimd.on_throttle(clock.now - 0.1, clock.now, retry_after=1.0)  # sent after it: a new event
    assert aimd.limit == 7


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
    aimd = Aimd(20, start=20, clock=clock)
    aimd.on_throttle(clock.now, clock.now, certain=True)
    assert aimd.limit == 12 and aimd.paused_for() == 0


def test_grows_back_quickly_to_near_the_cut_then_probes_slowly():
    clock = Clock()
    aimd = Aimd(40, start=40, clock=clock)
    aimd.on_throttle(clock.now, clock.now, retry_after=0.1)  # cut from 40 to 24
    clock.now += 1  # the successes below are of calls admitted after the cut
    successes_to = {}
    successes = 0
    while aimd.limit < 40 and successes < 20_000:
        aimd.on_success(clock.now, clock.now, queued=True)
        successes += 1
        successes_to.setdefault(aimd.limit, successes)
    assert aimd.limit == 40
    fast = (successes_to[35] - successes_to[25]) / 10  # per slot, growing back below the level of the cut
    slow = successes_to[38] - successes_to[37]  # one slot near that level
    assert slow > 5 * fast  # probing for more is several times slower than growing back


def test_fast_growth_stops_near_what_the_provider_took_not_where_the_cut_began():
    clock = Clock()
    aimd = Aimd(64, start=40, clock=clock)
    sent = clock.now
    clock.now += 0.01
    for _ in range(20):  # one event: 20 of the calls sent at 40 in flight were refused, so about 20 held
        aimd.on_throttle(sent, clock.now, retry_after=0.05)
    assert aimd.limit == 20
    clock.now += 1
    for _ in range(200):  # ten rounds of successes at about 20 in flight
        aimd.on_success(clock.now, clock.now, queued=True)
    # 20 is what held, so growth is the slow probe (about a slot per ten rounds), not a quick climb back towards
    # 90% of the 40 the cut began at (which refused half its calls).
    assert 20 <= aimd.limit <= 21


def test_growth_only_while_calls_are_queueing():
    clock = Clock()
    aimd = Aimd(16, start=16, clock=clock)
    aimd.on_throttle(clock.now, clock.now, retry_after=0.1)
    clock.now += 1
    for _ in range(500):
        aimd.on_success(clock.now, clock.now, queued=False)
    assert aimd.limit == 9


def test_a_success_admitted_before_the_last_cut_does_not_grow_the_limit():
    clock = Clock()
    aimd = Aimd(16, start=16, clock=clock)
    admitted_before = clock.now
    clock.now += 0.5
    aimd.on_throttle(clock.now, clock.now, retry_after=0.1)  # cut to 9
    cut_at = clock.now
    clock.now += 0.3
    for _ in range(200):  # calls sent at the old level come back fine: that says nothing about the new one
        aimd.on_success(admitted_before, clock.now, queued=True)
    assert aimd.limit == 9
    for _ in range(20):
        aimd.on_success(cut_at + 0.1, clock.now, queued=True)
    assert aimd.limit > 9


def test_an_idle_key_with_history_starts_from_what_it_learned():
    clock = Clock()
    aimd = Aimd(32, start=20, clock=clock)
    aimd.on_throttle(clock.now, clock.now, retry_after=0.1)
    assert aimd.limit == 12
    clock.now += IDLE_RESET_S + 1
    aimd.touch(clock.now)
    assert aimd.limit == 18  # 90% of where its last cut began, not the setting (32) and not a slow start
    fresh = Aimd(32, clock=clock)
    clock.now += IDLE_RESET_S + 1
    fresh.touch(clock.now)
    assert fresh.limit == SLOW_START_AT  # no history: still starting small


def test_raising_the_setting_is_grown_to_not_jumped_to():
    clock = Clock()
    aimd = Aimd(2, clock=clock)
    assert aimd.limit == 2
    aimd.set_ceiling(32)
    assert aimd.limit == SLOW_START_AT and aimd.slow_start  # no history: a slow start, not 32 at once
    assert rounds(aimd, clock, 3) == [8, 16, 32]
    aimd.on_throttle(clock.now, clock.now, retry_after=0.1)
    aimd.set_ceiling(64)
    assert aimd.limit == 19 and aimd.ceiling == 64 and not aimd.slow_start
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
        before = inference.controller_state(backend).allowed
        faulty_server.add_faults(Fault.status(503, message="The server is overloaded, try again later"))
        result = run(achat(backend, MESSAGES, GenParams(), None, retry=FAST))
        assert result.attempts == 2
        assert inference.controller_state(backend).allowed == int(before * Aimd(1).decrease)
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


# --- Retry-After as sent, and every wait within the call's budgets -------------------------------------------
def test_retry_after_inf_is_no_value_the_backoff_applies_and_nothing_is_paused(faulty_server):
    backend = backend_of(faulty_server)
    faulty_server.add_faults(Fault.status(429, retry_after=float("inf")))  # sent as "Retry-After: inf"
    result = run(achat(backend, MESSAGES, GenParams(), None, retry=FAST))
    assert result.attempts == 2 and faulty_server.requests[0].json is not None
    state = inference.controller_state(backend)
    assert state.refused == 1 and state.paused_s == 0  # the key was not paused (forever or at all)


@pytest.mark.parametrize("header", ["soon", "-5", "nan", ""])
def test_an_unreadable_or_negative_retry_after_is_the_default_backoff(faulty_server, header):
    backend = backend_of(faulty_server)
    faulty_server.add_faults(Fault.status(429, retry_after=header))
    policy = RetryPolicy(max_attempts=3, max_total_s=20, max_wait_s=0.01, base_backoff_s=5, max_backoff_s=5)
    with pytest.raises(InferenceError) as info:  # the back-off (2.5-5 s) passes the wait budget: no wait at all
        run(achat(backend, MESSAGES, GenParams(), None, retry=policy))
    assert info.value.kind == "throttled" and info.value.retry_after is None
    assert "asked to wait" not in info.value.message
    assert inference.controller_state(backend).paused_s == 0


def test_a_retry_after_as_an_http_date_is_the_seconds_until_then(faulty_server):
    from email.utils import formatdate

    backend = backend_of(faulty_server)
    faulty_server.add_faults(Fault.status(429, retry_after=formatdate(time.time() + 30, usegmt=True)))
    policy = RetryPolicy(max_attempts=3, max_total_s=20, max_wait_s=0.5)
    with pytest.raises(InferenceError) as info:
        run(achat(backend, MESSAGES, GenParams(), None, retry=policy))
    assert info.value.kind == "throttled" and 28 <= info.value.retry_after <= 30
    assert faulty_server.chat_requests == 1


def test_a_huge_retry_after_is_capped_at_the_longest_wait(faulty_server):
    backend = backend_of(faulty_server)
    faulty_server.add_faults(Fault.status(429, retry_after=1e12))
    policy = RetryPolicy(max_attempts=3, max_total_s=20, max_wait_s=0.3)
    with pytest.raises(InferenceError) as info:  # a wait past the budget is not started: no 31,000-year wait
        run(achat(backend, MESSAGES, GenParams(), None, retry=policy))
    assert info.value.kind == "throttled" and faulty_server.chat_requests == 1
    assert inference.controller_state(backend).paused_s <= 0.3  # the key's pause was capped at that wait too
    after = RetryPolicy(max_attempts=3, max_total_s=20, max_wait_s=5)
    assert run(achat(backend, MESSAGES, GenParams(), None, retry=after)).attempts == 1  # usable after that pause


def test_a_controller_never_pauses_forever_and_its_timer_never_overflows(monkeypatch):
    errors: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    controller = RateController(4)
    controller.throttled(time.monotonic(), float("inf"))
    assert controller.paused_for() == 0  # not finite: no pause
    controller.throttled(time.monotonic(), 1e300)
    assert 0 < controller.paused_for() <= MAX_PAUSE_S
    assert controller.acquire(timeout=0.05) is False  # waits (on a bounded timer) and gives up in time
    assert controller.waiting == 0 and controller.in_use == 0
    assert errors == []


def test_a_call_waiting_for_a_slot_on_a_paused_key_respects_its_budget_and_cancellation(faulty_server):
    """One call's 429 with Retry-After 6 pauses the key; another call with 1 s budgets gives up at once (no request
    sent), a third waiting for the slot and the first waiting to retry are cancelled: no slot, no queue left."""
    backend = backend_of(faulty_server)
    faulty_server.add_faults(Fault.status(429, retry_after=6))
    patient = RetryPolicy(max_attempts=3, max_total_s=60, max_wait_s=60)
    hurried = RetryPolicy(max_attempts=3, max_total_s=1, max_wait_s=1)
    limiter = inference.limiter_for(backend)

    async def scenario():
        async with AsyncChat(backend, None, retry=patient) as chat, AsyncChat(backend, None, retry=hurried) as quick:
            first = asyncio.create_task(chat(MESSAGES))
            while limiter.paused_for() == 0:
                await asyncio.sleep(0.01)
            with pytest.raises(InferenceError) as info:
                await quick(MESSAGES)
            third = asyncio.create_task(chat(MESSAGES))
            while limiter.waiting == 0:
                await asyncio.sleep(0.01)
            for task in (first, third):
                task.cancel()
            for task in (first, third):
                with pytest.raises(asyncio.CancelledError):
                    await task
            return info.value

    error = run(scenario())
    assert error.kind == "throttled" and "wait 6.0 s more" in error.message and "limit of 1.0 s" in error.message
    assert faulty_server.chat_requests == 1  # only the first call's request: nobody sent during the pause
    assert limiter.waiting == 0 and limiter.in_use == 0


def test_a_wait_for_a_busy_slot_ends_with_the_wait_budget(faulty_server):
    backend = backend_of(faulty_server)
    inference.set_concurrency_limit(backend, 1)
    faulty_server.add_faults(Fault.delay(1.5))  # the one slot stays busy
    limiter = inference.limiter_for(backend)
    try:

        async def scenario():
            busy = asyncio.create_task(achat(backend, MESSAGES, GenParams(), None, retry=FAST))
            while faulty_server.chat_requests == 0:
                await asyncio.sleep(0.01)
            policy = RetryPolicy(max_attempts=3, max_total_s=20, max_wait_s=0.2)
            with pytest.raises(InferenceError) as info:
                await achat(backend, MESSAGES, GenParams(), None, retry=policy)
            requests_meanwhile = faulty_server.chat_requests
            await busy
            return info.value, requests_meanwhile

        error, requests_meanwhile = run(scenario())
    finally:
        inference.set_concurrency_limit(backend, 32)
    assert error.kind == "throttled" and "stayed busy" in error.message
    assert requests_meanwhile == 1 and limiter.waiting == 0 and limiter.in_use == 0


# --- streaming: the same policy, the same waits ------------------------------------------------------------------
def test_streaming_throttles_are_waits_not_attempts_like_achat(faulty_server):
    faulty_server.add_faults(*[Fault.status(429, retry_after=0.01)] * 4)
    policy = RetryPolicy(max_attempts=2, max_total_s=20, base_backoff_s=0.01, max_backoff_s=0.05)
    events = list(inference.stream_chat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=policy))
    assert events[-1].kind == "done" and events[-1].text.startswith("Echo:")
    assert faulty_server.chat_requests == 5  # 4 waits, then the answer: more than max_attempts requests


def test_streaming_gives_up_with_the_same_wait_budget(faulty_server):
    faulty_server.add_faults(*[Fault.status(429, retry_after=0.2)] * 50)
    policy = RetryPolicy(max_attempts=3, max_total_s=60, max_wait_s=0.5)
    with pytest.raises(InferenceError) as info:
        list(inference.stream_chat(backend_of(faulty_server), MESSAGES, GenParams(), None, retry=policy))
    assert info.value.kind == "throttled" and "limit of 0.5 s" in info.value.message
    assert faulty_server.chat_requests == 3  # waited 0.2 + 0.2; a third wait would pass 0.5 s, as with achat


def test_a_cancelled_stream_stops_waiting_at_once(faulty_server):
    backend = backend_of(faulty_server)
    faulty_server.add_faults(Fault.status(429, retry_after=6))
    cancel = threading.Event()
    threading.Thread(target=lambda: (_wait_for(lambda: faulty_server.chat_requests >= 1), cancel.set())).start()
    with pytest.raises(InferenceError) as info:
        list(inference.stream_chat(backend, MESSAGES, GenParams(), None, retry=FAST, cancel=cancel))
    assert info.value.kind == "cancelled"
    assert faulty_server.chat_requests == 1  # it never retried after its 6 s wait
    assert inference.limiter_for(backend).in_use == 0


def _wait_for(condition, limit: float = 10.0) -> None:
    end = time.monotonic() + limit
    while not condition() and time.monotonic() < end:
        time.sleep(0.005)
