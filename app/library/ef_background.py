"""ef_search chosen in the background: measuring recall takes ~40 s at 100k items, and searches and index
additions must go on meanwhile (the measurement holds the index's own lock only for one slice of queries
at a time: ``vector_index.recall_at_k``)."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from app.library import vector_index
from app.library.vector_index import ChoiceStopped, EfChoice, VectorIndex

log = logging.getLogger(__name__)

QuerySets = list[tuple[np.ndarray, np.ndarray | None]]


class EfChooser:
    """One worker thread that runs ``choose_ef_search``; at most one choice per key at a time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: set = set()
        self._stop = threading.Event()  # set by wait(finish=False): running choices end at their next slice

    def busy(self, key) -> bool:
        with self._lock:
            return key in self._pending

    def submit(self, key, index: VectorIndex, query_sets: QuerySets,
               on_chosen: Callable[[EfChoice], None]) -> bool:
        """Start a choice for ``key`` unless one is running; ``on_chosen`` runs on the worker thread."""
        with self._lock:
            if key in self._pending:
                return False
            self._pending.add(key)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cots-ef-choice")
            self._pool.submit(self._run, key, index, query_sets, on_chosen)
            return True

    def _run(self, key, index: VectorIndex, query_sets: QuerySets, on_chosen: Callable[[EfChoice], None]) -> None:
        started = time.perf_counter()
        try:
            # looked up at call time, so a test can slow it down
            choice = vector_index.choose_ef_search(index, query_sets, stop=self._stop)
            log.info("%s index: ef_search %d (recall@10 %.3f on %d queries) chosen in %.1fs", key[0],
                     choice.ef_search, choice.recall, choice.queries, time.perf_counter() - started)
            on_chosen(choice)
        except ChoiceStopped:  # closing: the index keeps its old ef, and the next save measures again
            log.info("choosing ef_search for the %s index stopped after %.1fs", key[0], time.perf_counter() - started)
        except Exception as error:  # noqa: BLE001 - a failed choice keeps the old ef; the next save retries
            log.warning("choosing ef_search for the %s index failed (%s: %s)", key[0], type(error).__name__, error)
        finally:
            with self._lock:
                self._pending.discard(key)

    def wait(self, finish: bool = True) -> None:
        """Wait for every running choice (``Library.close``); ``finish=False`` stops them first (a window
        closing must not wait minutes for a 1M-item measurement; nothing is stored, the next save retries)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        if not finish:
            self._stop.set()
        pool.shutdown(wait=True, cancel_futures=not finish)
        self._stop.clear()
