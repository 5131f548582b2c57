"""The window stays true to a library that another process changes (``cots index``, ``cots forget``,
``cots people name``, a model switch): ``LibraryWatcher`` notices such a change, ``catch_up`` shows it.

Noticing is one tiny read a second on a worker (``LibraryService.library_version``: SQLite's data_version,
which every commit of another connection changes), never SQL on the GUI thread. The window's own writes
change it too; while its own indexing runs (which refreshes the window itself) changes wait, and after it
they make one more refresh: a spare refresh is cheap, a change missed is what this module is against.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QAbstractItemView

from app.gui.panels import basename
from app.gui.service import LibraryService
from app.gui.tasks import TaskRunner

POLL_MS = 1000  # one PRAGMA a second: a change shows within about a second
MIN_GAP_S = 3.0  # another process indexing commits a batch every moment: refresh at most this often


class LibraryWatcher(QObject):
    """Polls the library's version every ``poll_ms``; ``changed_outside`` after it changed, at most once
    per ``min_gap_s`` (a burst of commits: during it every ``min_gap_s``, and once after its end), and not
    while ``busy()`` (the window's own indexing or model switch, which refresh the window themselves)."""

    changed_outside = Signal()

    def __init__(self, service: LibraryService, runner: TaskRunner, busy: Callable[[], bool],
                 parent: QObject | None = None, poll_ms: int = POLL_MS, min_gap_s: float = MIN_GAP_S):
        super().__init__(parent)
        self.service, self.runner, self.busy, self.min_gap_s = service, runner, busy, min_gap_s
        self.version: int | None = None  # as last read; None before the first read
        self.pending = False  # changed since the last ``changed_outside``
        self.polling = False  # a read is on its way: the next tick does not queue another
        self.last_emit = float("-inf")
        self.timer = QTimer(self, interval=poll_ms)
        self.timer.timeout.connect(self.poll)
        self.timer.start()
        self.poll()  # the version the window's first look at the library goes with

    def poll(self) -> None:
        if self.polling:
            return
        self.polling = True
        self.runner.run_task(self.service.library_version, self._read)

    def _read(self, version, error) -> None:
        self.polling = False
        if error is not None:  # a library closing, or a fake service without versions: nothing to follow
            return
        if self.version is not None and version != self.version:
            self.pending = True
        self.version = version
        now = time.monotonic()
        if self.pending and not self.busy() and now - self.last_emit >= self.min_gap_s:
            self.pending, self.last_emit = False, now
            self.changed_outside.emit()


def catch_up(window) -> None:
    """Show the library of a ``MainWindow`` as another process left it: the counts, folders, failures and
    filter choices, the library listing when it is shown (query results stay until the next query), the
    People view when it is open (not under a name being typed), and the model, if it was switched."""
    window.refresh_status()
    window.searching.relist()
    view = getattr(window, "people_view", None)
    if view is not None and view.isVisible() and view.list.state() != QAbstractItemView.EditingState:
        view.refresh()
    window.runner.run_task(window.service.follow_library_model,
                           lambda source, error: _model_followed(window, source, error))


def _model_followed(window, source: str | None, error: BaseException | None) -> None:
    if error is not None:
        return window.notify(f"The library was re-embedded with another model elsewhere, and it could not be "
                             f"loaded here: {error}", "error")
    if source:
        window.current_model = window.settings["model"] = source  # else the next start would switch back
        window.model_menu.refresh()
        window.notify(f"The library was re-embedded with {basename(source)} elsewhere; searches use it now",
                      "info")
