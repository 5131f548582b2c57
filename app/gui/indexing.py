"""Background indexing: one job at a time on the ``indexing`` pool, with progress, pause, resume, cancel."""
from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from app.gui.elided_label import ElidedLabel
from app.gui.service import IndexSummary
from app.gui.tasks import TaskRunner
from app.library.indexer import IndexControl, IndexProgress
from app.library.signals import pass_name
from app.library.timefmt import format_time


class IndexingController(QObject):
    """Runs ``job(on_progress, control)`` in the background and reports through signals.

    Progress comes from the worker thread; it is throttled (at most ~20 updates a second, plus the
    last) and crosses to the GUI thread as a queued signal, so a fast indexer cannot flood the loop.
    """

    started = Signal(str)  # what is running: "Indexing", "Re-embedding with ..."
    progress = Signal(object)  # IndexProgress
    finished = Signal(object)  # IndexSummary of an indexing run
    ended = Signal()  # after any job: finished, failed or handed to its own ``on_done``
    failed = Signal(str)
    paused_changed = Signal(bool)

    def __init__(self, runner: TaskRunner, parent: QObject | None = None, min_interval: float = 0.05):
        super().__init__(parent)
        self.runner = runner
        self.min_interval = min_interval
        self.control: IndexControl | None = None
        self.label = ""
        self._on_done: Callable[[object], None] | None = None

    @property
    def running(self) -> bool:
        return self.control is not None

    def start(self, job: Callable[[Callable[[IndexProgress], None], IndexControl], object], label: str = "Indexing",
              on_done: Callable[[object], None] | None = None) -> bool:
        """Run ``job(on_progress, control)``; its result goes to ``finished`` (an IndexSummary), or to
        ``on_done`` for other jobs (a model switch). False when a job is already running."""
        if self.running:
            return False
        control = IndexControl()
        self.control, self.label, self._on_done = control, label, on_done
        last = [0.0]

        def on_progress(progress: IndexProgress) -> None:  # worker thread: emit only, never touch widgets
            now = time.monotonic()
            if now - last[0] >= self.min_interval or progress.done >= progress.total:
                last[0] = now
                self.progress.emit(progress)

        self.runner.run_task(lambda: job(on_progress, control), self._done, pool="indexing")
        self.started.emit(label)
        return True

    def _done(self, result, error: BaseException | None) -> None:
        on_done, self.control, self._on_done = self._on_done, None, None
        if error is not None:
            self.failed.emit(str(error) or type(error).__name__)
        elif on_done is not None:
            on_done(result)
        else:
            self.finished.emit(result if result is not None else IndexSummary())
        self.ended.emit()

    def pause(self) -> None:
        if self.control and not self.control.paused:
            self.control.pause()
            self.paused_changed.emit(True)

    def resume(self) -> None:
        if self.control and self.control.paused:
            self.control.resume()
            self.paused_changed.emit(False)

    def toggle_pause(self) -> None:
        if self.control:
            self.resume() if self.control.paused else self.pause()

    def cancel(self) -> None:
        if self.control:
            self.control.cancel()


class IndexingBar(QWidget):
    """done / total, rate, ETA and the current file, with pause/resume and cancel buttons."""

    def __init__(self, controller: IndexingController, parent=None):
        super().__init__(parent)
        self.controller = controller
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        self.bar = QProgressBar()
        self.bar.setMinimumWidth(220)
        self.label = ElidedLabel()  # the current file's path: it must not widen the window
        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel")
        layout.addWidget(self.bar)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.pause_button)
        layout.addWidget(self.cancel_button)
        self.pause_button.clicked.connect(controller.toggle_pause)
        self.cancel_button.clicked.connect(controller.cancel)
        controller.started.connect(self._started)
        controller.progress.connect(self.set_progress)
        controller.paused_changed.connect(lambda p: self.pause_button.setText("Resume" if p else "Pause"))
        controller.ended.connect(self.hide)
        self.hide()

    def _started(self, label: str) -> None:
        self.bar.setRange(0, 0)  # busy until the first count arrives (scanning)
        self.label.setText(f"{label}: scanning folders…")
        self.pause_button.setText("Pause")
        self.show()

    def set_progress(self, progress: IndexProgress) -> None:
        self.bar.setRange(0, max(progress.total, 1))
        self.bar.setValue(progress.done)
        self.bar.setFormat(f"{progress.done} / {progress.total}")
        parts = [self.controller.label or "Indexing"]
        if progress.phase == "prepare":
            parts.append("preparing the model (once per model)")
        if progress.phase == "signals":  # the second pass: the library is already searchable
            parts.append(f"second pass: {pass_name()}, {progress.done} of {progress.total} photos")
        if progress.rate:
            parts.append(f"{progress.rate:.1f} {'photos' if progress.phase == 'signals' else 'files'}/s")
        if progress.eta_s is not None and progress.done < progress.total:
            parts.append(f"ETA {format_time(progress.eta_s)}")
        if progress.current:
            parts.append(progress.current)
        self.label.setText(" · ".join(parts))
        self.label.setToolTip(progress.current or "")
