"""What the window needs from the library, as plain Python (no Qt): results, filters, progress.

Every ``LibraryService`` method may block (model, SQLite, files), so the window only calls them
through ``TaskRunner.run_task``. ``EngineService`` implements it over ``app.library``; tests may pass
any object with the same methods.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from PIL import Image


@dataclass
class Hit:
    """One search result."""

    path: str
    kind: str  # image | video
    score: float
    timestamp: float | None = None  # video: start of the best-matching segment, seconds
    weak: bool = False  # below the calibrated relevance cut-off
    date: float | None = None  # capture time, else mtime (epoch seconds)
    size: int | None = None
    width: int | None = None
    height: int | None = None
    media_id: int | None = None


@dataclass
class Filters:
    kind: str | None = None  # None, "image" or "video"
    folder: str | None = None
    date_from: float | None = None
    date_to: float | None = None

    def accepts(self, hit: Hit) -> bool:
        if self.kind and hit.kind != self.kind:
            return False
        if self.folder and not (hit.path == self.folder or hit.path.startswith(self.folder.rstrip("/\\") + "/")
                                or hit.path.startswith(self.folder.rstrip("/\\") + "\\")):
            return False
        if hit.date is not None:
            if self.date_from is not None and hit.date < self.date_from:
                return False
            if self.date_to is not None and hit.date > self.date_to:
                return False
        return True


@dataclass
class Progress:
    done: int
    total: int
    current: str = ""
    rate: float = 0.0  # files per second
    eta: float | None = None  # seconds left
    phase: str = "index"  # scan | index | texts | done

    @staticmethod
    def measure(done: int, total: int, current: str, started: float) -> Progress:
        elapsed = max(time.monotonic() - started, 1e-6)
        rate = done / elapsed if done else 0.0
        eta = (total - done) / rate if rate > 0 else None
        return Progress(done, total, current, rate, eta)


@dataclass
class Counts:
    images: int = 0
    videos: int = 0
    failed: int = 0
    pending: int = 0
    model: str | None = None


@dataclass
class IndexSummary:
    indexed: int = 0
    failed: int = 0
    removed: int = 0
    cancelled: bool = False
    errors: list[tuple[str, str]] = field(default_factory=list)


class IndexControl:
    """Pause / resume / cancel for a running indexer (the same two events ``app.library.Indexer`` takes:
    ``cancel_event`` set = stop, ``pause_event`` set = hold)."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self.pause_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()
        self.pause_event.clear()  # a paused worker must wake up to see the cancel

    def pause(self) -> None:
        self.pause_event.set()

    def resume(self) -> None:
        self.pause_event.clear()

    @property
    def paused(self) -> bool:
        return self.pause_event.is_set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def checkpoint(self) -> bool:
        """Block while paused; True when the run should stop."""
        while self.pause_event.is_set() and not self.cancel_event.is_set():
            time.sleep(0.05)
        return self.cancel_event.is_set()


ImageInput = str | Path | Image.Image


class LibraryService(Protocol):
    def load_model(self) -> str: ...
    def model_name(self) -> str | None: ...
    def pending_switch(self) -> str | None: ...
    def folders(self) -> list[str]: ...
    def add_folder(self, path: str) -> str: ...
    def remove_folder(self, path: str) -> int: ...
    def counts(self) -> Counts: ...
    def failures(self) -> list[tuple[str, str]]: ...
    def index(self, on_progress, control: IndexControl) -> IndexSummary: ...
    def search(self, query: str, filters: Filters, k: int = 200) -> list[Hit]: ...
    def similar(self, image: ImageInput, filters: Filters, k: int = 60) -> list[Hit]: ...
    def describe(self, image: ImageInput, k: int = 12) -> list[tuple[str, float]]: ...
    def texts_for(self, hit: Hit, k: int = 5) -> list[tuple[str, float]]: ...
    def switch_model(self, source: str, on_progress, control: IndexControl) -> str: ...
    def close(self) -> None: ...
