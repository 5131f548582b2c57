"""The search flow of the window: a query or an image -> the service on the interactive pool -> the
results grid, newest request wins; the weak-match toggle and the line that says what was found."""
from __future__ import annotations

import time

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel

from app.gui.panels import basename
from app.gui.results import ResultsModel
from app.gui.search_bar import SearchBar
from app.gui.service import LibraryService
from app.gui.settings import Settings
from app.gui.tasks import TaskRunner


class SearchController(QObject):
    """Owns the query state (the generation count that drops superseded answers, a query typed before
    the model loaded) and the results label. ``notice(text, level)`` asks the window to tell the person."""

    notice = Signal(str, str)

    def __init__(self, service: LibraryService, runner: TaskRunner, bar: SearchBar, model: ResultsModel,
                 settings: Settings, parent: QObject | None = None):
        super().__init__(parent)
        self.service, self.runner, self.bar, self.model, self.settings = service, runner, bar, model, settings
        self.label = QLabel()
        self.model_ready = False
        self.generation = 0  # every request bumps it; an answer for an older one is dropped
        self.pending_query: str | None = None  # typed before the model loaded
        self.last = ("", 0.0)  # what the shown results are ("“a dog”", "similar to x.jpg") and their ms
        bar.weak.setChecked(settings["show_weaker"])
        model.show_weak = bar.weak.isChecked()
        bar.query_changed.connect(self.run_query)
        bar.show_weak_changed.connect(self.set_show_weak)
        bar.sort_changed.connect(model.set_sort)

    def set_model_ready(self) -> None:
        """The model has loaded: answer the query typed meanwhile."""
        self.model_ready = True
        if self.pending_query is not None:
            self.run_query(self.pending_query)

    def query(self) -> str:
        return self.bar.box.text().strip()

    def refresh(self) -> None:
        """Ask the current query again (results grow as items get indexed)."""
        if self.query():
            self.run_query(self.query())

    def run_query(self, query: str) -> None:
        self.generation += 1
        generation = self.generation
        if not query:
            self.pending_query = None
            self.model.set_hits([])
            self.label.clear()
            return
        if not self.model_ready:
            self.pending_query = query
            self.label.setText("Waiting for the model to load…")
            return
        self.pending_query = None
        filters = self.bar.filters()
        started = time.perf_counter()
        self.runner.clear("interactive")  # a newer query supersedes queued ones
        self.runner.run_task(lambda: self.service.search(query, filters),
                             lambda hits, error: self._show_hits(generation, hits, error, f"“{query}”", started),
                             pool="interactive")

    def find_similar(self, image) -> None:
        """Photos that look like ``image`` (a path or a PIL image), within the current filters."""
        if not self.model_ready:
            return self.notice.emit("The model is still loading; try again in a moment", "info")
        self.generation += 1
        generation = self.generation
        filters = self.bar.filters()
        name = basename(image) if isinstance(image, str) else "the pasted image"
        started = time.perf_counter()
        self.runner.run_task(lambda: self.service.similar(image, filters),
                             lambda hits, error: self._show_hits(generation, hits, error, f"similar to {name}", started),
                             pool="interactive")

    def _show_hits(self, generation: int, hits, error, what: str, started: float) -> None:
        if generation != self.generation:
            return  # a newer query has been asked meanwhile
        if error is not None:
            return self.notice.emit(f"Search failed: {error}", "error")
        self.model.set_hits(hits)
        self.last = (what, (time.perf_counter() - started) * 1000)
        self.update_label()

    def update_label(self) -> None:
        what, ms = self.last
        hidden, weak = self.model.hidden_count(), sum(h.weak for h in self.model.hits())
        strong = self.model.rowCount() - weak
        self.bar.set_hidden_count(hidden)
        if not strong and not weak:
            text = f"No good matches {what}" + (" (tick “Show weaker matches”)" if hidden else "")
        else:
            text = f"{strong} matches {what}" + (f" + {weak} weaker" if weak else "") + f" ({ms:.0f} ms)"
        self.label.setText(text)

    def set_show_weak(self, show: bool) -> None:
        self.settings["show_weaker"] = show
        self.model.set_show_weak(show)
        self.update_label()
