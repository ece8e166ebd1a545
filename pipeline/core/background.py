"""Long work the app and the CLI poll: the generic part of a run's handle (lifecycle, cancel, wait), and running it
in a background thread with its own event loop.

Owns :class:`TaskHandle`, the base of ``pipeline.generate.runhandle.RunHandle`` (a generation run) and
``pipeline.judge.check.CheckHandle`` (a judge check), and :func:`start_thread`. The lifecycle is one-way:
``attach`` (the loop and task doing the work) → work → ``finish`` (once; waiters wake, ``on_end``'s release runs
first). :meth:`TaskHandle.cancel` is thread-safe: it always sets :attr:`TaskHandle.cancel_requested` (work checks it
between steps), and for a handle whose :attr:`~TaskHandle.abandon_on_cancel` is true it also cancels the attached
task (calls in flight are abandoned). No Gradio, no model calls, no token.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

log = logging.getLogger(__name__)

__all__ = ["TaskHandle", "start_thread"]


class TaskHandle:
    """Thread-safe lifecycle of one piece of background work: ``running``, ``cancel()``, ``wait()``."""

    abandon_on_cancel: ClassVar[bool] = True  # cancel() also cancels the attached task (else: only asks it to stop)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._cancel_event = threading.Event()
        self._done_event = threading.Event()
        self._release: Callable[[], None] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task | None) -> None:
        """Tell the handle which loop and task do the work, so :meth:`cancel` can reach them."""
        self._loop, self._task = loop, task

    def on_end(self, release: Callable[[], None], thread: threading.Thread | None = None) -> None:
        """Call ``release`` once when the work ends (before waiters wake), e.g. to free a file for the next run."""
        self._release = release
        if thread is not None:
            self._thread = thread

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_event.is_set()

    def cancel(self) -> None:
        """Ask the work to stop; with :attr:`abandon_on_cancel`, cancel its task too (calls in flight are dropped)."""
        self._cancel_event.set()
        loop, task = self._loop, self._task
        if self.abandon_on_cancel and loop is not None and task is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop closed meanwhile: the work is over anyway
                pass

    def finish(self) -> None:
        """The work has ended: run the release (once), then wake every waiter."""
        release, self._release = self._release, None
        if release is not None:
            release()
        self._done_event.set()

    @property
    def running(self) -> bool:
        return not self._done_event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the work ends (True) or ``timeout`` passes (False)."""
        return self._done_event.wait(timeout)


def start_thread(
    handle: TaskHandle,
    work: Callable[[], Coroutine[Any, Any, Any]],
    *,
    name: str,
    crashed: Callable[[BaseException | None], None],
) -> threading.Thread:
    """Run ``work()`` in a daemon thread with its own event loop (``asyncio.run``) and return the started thread.

    ``work`` reports through ``handle`` and ends it itself. If it raises, or returns with ``handle`` still running,
    ``crashed(exc or None)`` must end it (it is called in the thread, and never with a token in the exception's
    text logged here: only its type is)."""

    def target() -> None:
        error: BaseException | None = None
        try:
            asyncio.run(work())
        except BaseException as exc:  # noqa: BLE001 - the handle reports it
            log.error("%s failed: %s", name, type(exc).__name__)
            error = exc
        finally:
            if handle.running:
                crashed(error)
            handle.finish()  # a no-op release and a set event when crashed() already ended it

    thread = threading.Thread(target=target, name=name, daemon=True)
    handle._thread = thread
    thread.start()
    return thread
