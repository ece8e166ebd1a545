"""The run machinery a generation run and a judge check share: the call scheduler (pipeline/core/scheduler.py) and the
background handle (pipeline/core/background.py)."""

from __future__ import annotations

import asyncio
import threading

from pipeline.core.background import TaskHandle, start_thread
from pipeline.core.scheduler import PRIORITY_GENERATION, PRIORITY_JUDGE, Scheduler


def test_a_waiting_generation_goes_before_an_earlier_judge_call():
    order: list[str] = []

    async def main() -> None:
        scheduler = Scheduler(1)
        release = asyncio.Event()

        async def first(_gate):
            await release.wait()
            return "first"

        async def call(name: str):
            order.append(name)
            return name

        busy = asyncio.ensure_future(scheduler.call(first, kind="generation", priority=PRIORITY_GENERATION))
        await asyncio.sleep(0.01)
        judge = asyncio.ensure_future(scheduler.call(lambda _g: call("judge"), kind="judge", priority=PRIORITY_JUDGE))
        await asyncio.sleep(0.01)
        gen = asyncio.ensure_future(
            scheduler.call(lambda _g: call("generation"), kind="generation", priority=PRIORITY_GENERATION)
        )
        await asyncio.sleep(0.01)
        assert scheduler.in_flight == 1 and order == []
        release.set()
        assert await asyncio.gather(busy, judge, gen) == ["first", "judge", "generation"]
        assert scheduler.in_flight == 0

    asyncio.run(main())
    assert order == ["generation", "judge"]


def test_a_gated_call_holds_its_slot_only_on_the_wire():
    async def main() -> None:
        scheduler = Scheduler(1)
        seen: list[int] = []

        async def request(gate):
            async with gate():
                seen.append(scheduler.in_flight)
            await asyncio.sleep(0.01)  # waiting to retry: no slot held
            seen.append(scheduler.in_flight)
            async with gate():
                return "answer"

        assert await scheduler.call(request, kind="judge", priority=PRIORITY_JUDGE, gated=True) == "answer"
        assert seen == [1, 0]

    asyncio.run(main())


def test_an_error_reaches_the_caller_and_frees_the_slot():
    async def main() -> None:
        scheduler = Scheduler(2)

        async def broken(_gate):
            raise ValueError("refused")

        try:
            await scheduler.call(broken, kind="judge", priority=PRIORITY_JUDGE)
        except ValueError as exc:
            assert str(exc) == "refused"
        else:  # pragma: no cover
            raise AssertionError("the error was swallowed")
        assert scheduler.in_flight == 0 and scheduler.slots.idle

    asyncio.run(main())


class _Polite(TaskHandle):
    abandon_on_cancel = False


def test_cancel_abandons_the_task_only_when_the_handle_says_so():
    for handle_type, abandoned in ((TaskHandle, True), (_Polite, False)):
        handle = handle_type()
        started = threading.Event()
        outcome: list[str] = []

        async def work(h=handle, out=outcome, go=started) -> None:
            h.attach(asyncio.get_running_loop(), asyncio.current_task())
            go.set()
            try:
                while not h.cancel_requested:
                    await asyncio.sleep(0.01)
                out.append("stopped between steps")
            except asyncio.CancelledError:
                out.append("abandoned")
            h.finish()

        start_thread(handle, work, name="test-work", crashed=lambda exc: None)
        assert started.wait(10)
        assert handle.running
        handle.cancel()
        assert handle.wait(10) and not handle.running
        assert outcome == (["abandoned"] if abandoned else ["stopped between steps"])


def test_a_crash_is_reported_and_ends_the_handle():
    handle = TaskHandle()
    seen: list[str] = []

    async def work() -> None:
        raise RuntimeError("boom")

    start_thread(handle, work, name="test-crash", crashed=lambda exc: seen.append(repr(exc)))
    assert handle.wait(10)
    assert seen == ["RuntimeError('boom')"]
