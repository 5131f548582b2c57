"""The one gateway for background work (after Picard's ``picard/util/thread.py``).

``runner.run_task(func, on_done, pool="general")`` runs ``func()`` on a thread pool sized for its
purpose and calls ``on_done(result, error)`` on the GUI thread. Workers never touch widgets: they
return values (or emit progress through :class:`SignalRelay`), and only ``on_done`` updates the UI.
All pools are waited for at shutdown.
"""
from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

log = logging.getLogger(__name__)

# Pools by purpose: general work; one thread for interactive requests (search, describe) so a fresh
# query never queues behind indexing; grid thumbnails (their queue is dropped as the grid scrolls on);
# the People view's face crops (never dropped: the grid's scrolling must not empty a person's page);
# pages of the library being browsed; one long-running indexer / re-embedder.
POOL_SIZES = {"general": 2, "interactive": 1, "thumbnails": 2, "faces": 2, "browse": 1, "indexing": 1}

DoneCallback = Callable[[Any, BaseException | None], None]


class SignalRelay(QObject):
    """Lives on the GUI thread; signals emitted from workers arrive there through queued connections."""

    done = Signal(object, object, object)  # on_done, result, error

    @Slot(object, object, object)
    def deliver(self, on_done, result, error) -> None:
        if on_done is None:
            return
        try:
            on_done(result, error)
        except Exception:  # noqa: BLE001 - a failing callback must not kill the event loop
            log.exception("error in task callback")


class _Task(QRunnable):
    def __init__(self, func: Callable[[], Any], on_done: DoneCallback | None, relay: SignalRelay):
        super().__init__()
        self.func, self.on_done, self.relay = func, on_done, relay
        self.setAutoDelete(True)

    def run(self) -> None:
        result, error = None, None
        try:
            result = self.func()
        except BaseException as exc:  # noqa: BLE001 - errors travel back to the GUI thread
            error = exc
            log.debug("background task failed:\n%s", "".join(traceback.format_exception(exc)))
        self.relay.done.emit(self.on_done, result, error)


class TaskRunner(QObject):
    """Sized thread pools plus the relay that brings results back to the GUI thread."""

    def __init__(self, parent: QObject | None = None, sizes: dict[str, int] | None = None):
        super().__init__(parent)
        self.relay = SignalRelay(self)
        self.relay.done.connect(self.relay.deliver)
        self.pools: dict[str, QThreadPool] = {}
        for name, size in (sizes or POOL_SIZES).items():
            pool = QThreadPool(self)
            pool.setMaxThreadCount(size)
            self.pools[name] = pool
        self._closed = False

    def run_task(self, func: Callable[[], Any], on_done: DoneCallback | None = None,
                 pool: str = "general", priority: int = 0) -> None:
        """Run ``func`` in ``pool``; ``on_done(result, error)`` runs later on the GUI thread."""
        if self._closed:
            return
        self.pools[pool].start(_Task(func, on_done, self.relay), priority)

    def clear(self, pool: str) -> None:
        """Drop tasks of ``pool`` that have not started (stale thumbnails, superseded queries)."""
        self.pools[pool].clear()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Refuse new tasks, drop queued ones and wait for running ones (callers cancel long work first)."""
        self._closed = True
        ok = True
        for pool in self.pools.values():
            pool.clear()
        for pool in self.pools.values():
            ok = pool.waitForDone(timeout_ms) and ok
        return ok
