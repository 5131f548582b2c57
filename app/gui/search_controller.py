"""The search flow of the window: an empty query shows the library itself (newest first, by month or day),
a query or an image asks the service on the interactive pool and its results replace the library until
the query is cleared (the library comes back where it was). Newest request wins; the weak-match toggle
and the line above the grid that says what is shown."""
from __future__ import annotations

import html
import time
from datetime import datetime

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QLabel

from app.gui.grid import DAY_HEADERS_FROM, ResultsGrid
from app.gui.panels import basename
from app.gui.results import LibraryListing, ResultsModel, Section
from app.gui.search_bar import SearchBar
from app.gui.service import LibraryService
from app.gui.settings import Settings
from app.gui.tasks import TaskRunner
from app.library.dates import local_datetime
from app.library.search import Filters


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def match_text(strong: int, weak: int, hidden: int, what: str) -> tuple[str, bool]:
    """The results line ("1 match", "12 matches + 3 weaker", "no good matches — show 9 weaker") and
    whether it is rich text (a link that shows the weaker ones)."""
    if strong:
        return f"{plural(strong, 'match', 'matches')} {what}" + (f" + {weak} weaker" if weak else ""), False
    if hidden:
        return f"No good matches {html.escape(what)} — <a href='weak'>show {hidden} weaker</a>", True
    if weak:
        return f"No good matches {what} — {weak} weaker shown", False
    return f"No matches {what}", False


def section_title(period: str | None) -> str:
    """ "2024-05" -> "May 2024", "2024-05-17" -> "Friday 17 May 2024", "2024" -> "2024", None -> "Undated"."""
    if period is None:
        return "Undated"
    for pattern in ("%Y-%m-%d", "%Y-%m"):
        try:
            day = datetime.strptime(period, pattern)
        except ValueError:
            continue
        return f"{day:%A} {day.day} {day:%B %Y}" if pattern == "%Y-%m-%d" else f"{day:%B %Y}"
    return period


def sections_of(periods: list[tuple[str | None, int]]) -> list[Section]:
    sections, start = [], 0
    for period, count in periods:
        sections.append(Section(section_title(period), start, count, period))
        start += count
    return sections


class SearchController(QObject):
    """Owns the query state (the generation count that drops superseded answers, a query typed before
    the model loaded), the library listing shown when there is no query, and the results label.
    ``notice(text, level)`` asks the window to tell the person; ``shown_periods({month: items})`` says
    when the items shown were taken (for the timeline)."""

    notice = Signal(str, str)
    shown_periods = Signal(dict)

    def __init__(self, service: LibraryService, runner: TaskRunner, bar: SearchBar, model: ResultsModel,
                 grid: ResultsGrid, settings: Settings, parent: QObject | None = None):
        super().__init__(parent)
        self.service, self.runner, self.bar, self.model, self.grid = service, runner, bar, model, grid
        self.settings = settings
        self.label = QLabel()
        self.label.setWordWrap(True)  # a long query wraps: as one line it widened the window for good (issue 32)
        self.label.linkActivated.connect(lambda _: self.bar.weak.setChecked(True))
        self.model_ready = False
        self.generation = 0  # every request bumps it; an answer for an older one is dropped
        self.pending_query: str | None = None  # typed before the model loaded
        self.last = ("", 0.0)  # what the shown results are ("“a dog”", "similar to x.jpg") and their ms
        self.listing: LibraryListing | None = None  # the library as last shown, kept to come back to
        self._listing_key: tuple | None = None  # (filters, grouping) it was made for
        self._listing_stale = False  # the library changed while query results were shown
        self.library_total = 0  # items in the whole library (the label says "12 of 52" under filters)
        bar.weak.setChecked(settings["show_weaker"])
        model.show_weak = bar.weak.isChecked()
        bar.query_changed.connect(self.run_query)
        bar.show_weak_changed.connect(self.set_show_weak)
        bar.sort_changed.connect(model.set_sort)
        grid.zoomed.connect(lambda _: self.model.browsing and self.show_library())
        bar.box.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        """Down in the search box goes to the first result."""
        if watched is self.bar.box and event.type() == event.Type.KeyPress and event.key() == Qt.Key_Down:
            return self.grid.select_first()
        return super().eventFilter(watched, event)

    def set_model_ready(self) -> None:
        """The model has loaded: answer the query typed meanwhile."""
        self.model_ready = True
        if self.pending_query is not None:
            self.run_query(self.pending_query)

    def query(self) -> str:
        return self.bar.box.text().strip()

    def refresh(self) -> None:
        """Ask again (results grow as items get indexed); the library is listed afresh where it was."""
        if self.query():
            self.run_query(self.query())
        elif self.model.browsing:
            self._listing_key = None
            self.show_library(keep_place=True)

    def relist(self) -> None:
        """The library changed (another process): list it afresh where it is shown, near the same row; shown
        results of a query stay until the next query, and Esc after it comes back to the library where it
        was at once, then lists it afresh there."""
        if self.model.browsing and not self.query():
            self._listing_key = None
            self.show_library(keep_place=True)
        else:
            self._listing_stale = True

    def run_query(self, query: str) -> None:
        self.generation += 1
        generation = self.generation
        if not query:
            self.pending_query = None
            return self.show_library()
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
        if self.model.browsing and self.listing is not None:  # to come back to the same place (Esc)
            self.listing.scroll = self.grid.verticalScrollBar().value()
        self.model.set_hits(hits)
        self.grid.verticalScrollBar().setValue(0)
        self.last = (what, (time.perf_counter() - started) * 1000)
        self.update_label()
        months: dict[str, int] = {}
        for hit in hits:
            if hit.record.date is not None:
                month = local_datetime(hit.record.date).strftime("%Y-%m")
                months[month] = months.get(month, 0) + 1
        self.shown_periods.emit(months)

    def update_label(self) -> None:
        if self.model.browsing:
            return self._update_library_label()
        what, ms = self.last
        hidden, weak = self.model.hidden_count(), sum(h.weak for h in self.model.hits())
        self.bar.set_hidden_count(hidden)
        text, rich = match_text(self.model.rowCount() - weak, weak, hidden, what)
        self.label.setTextFormat(Qt.RichText if rich else Qt.PlainText)
        self.label.setText(text + f" ({ms:.0f} ms)")

    def _update_library_label(self) -> None:
        self.bar.set_hidden_count(0)
        self.label.setTextFormat(Qt.PlainText)
        shown = self.listing.total if self.listing else 0
        filtered = bool(self._listing_key and self._listing_key[0].active())
        if self.listing is None:
            text = "Listing the library…"
        elif not shown:
            text = "Nothing matches the filters" if filtered else "No photos or videos yet"
        elif filtered:
            text = f"{shown} of {plural(self.library_total, 'photo and video', 'photos and videos')}, newest first"
        else:
            text = f"All {plural(shown, 'photo and video', 'photos and videos')}, newest first"
        self.label.setText(text)

    def set_show_weak(self, show: bool) -> None:
        self.settings["show_weaker"] = show
        self.model.set_show_weak(show)
        self.update_label()

    # -- the library ---------------------------------------------------------------------------
    def grouping(self) -> str:
        """Sections by day when the thumbnails are big, else by month."""
        return "%Y-%m-%d" if self.model.icon_size >= DAY_HEADERS_FROM else "%Y-%m"

    def show_library(self, keep_place: bool = False) -> None:
        """The library under the current filters, newest first; the listing last shown comes back at the
        place it was left (Esc after a search) when nothing changed meanwhile."""
        filters = self.bar.filters()
        key = (filters, self.grouping())
        if self.listing is not None and key == self._listing_key:
            self._set_listing(self.listing, self.listing.scroll)
            if self._listing_stale:  # back where it was now; afresh, at that place, when listed
                self._listing_stale, self._listing_key = False, None
                self.show_library(keep_place=True)
            return
        keep = keep_place or (self.model.browsing and key[1] != (self._listing_key or ("", ""))[1])  # a zoom
        generation, anchor = self.generation, self.grid.first_visible_row() if keep else None

        def summarise():
            periods = self.service.periods(filters, key[1])
            whole = self.service.periods(Filters(), "%Y") if filters.active() else periods
            return periods, sum(count for _, count in whole)

        self.runner.run_task(summarise, lambda result, error: self._listed(generation, key, anchor, result, error),
                             pool="browse")

    def _listed(self, generation: int, key: tuple, anchor: int | None, result, error) -> None:
        if generation != self.generation:
            return  # a query (or another listing) was asked meanwhile
        if error is not None:
            return self.notice.emit(f"Could not list the library: {error}", "error")
        periods, self.library_total = result
        filters = key[0]
        listing = LibraryListing(sum(count for _, count in periods), sections_of(periods),
                                 lambda offset, limit: self.service.browse(filters, offset, limit))
        self.listing, self._listing_key = listing, key
        self._set_listing(listing, None)
        if anchor is not None and anchor < listing.total:
            self.grid.scrollTo(self.model.index(anchor), ResultsGrid.PositionAtTop)
        months: dict[str, int] = {}
        for period, count in periods:
            if period:
                months[period[:7]] = months.get(period[:7], 0) + count
        self.shown_periods.emit(months)

    def _set_listing(self, listing: LibraryListing, scroll: int | None) -> None:
        self.model.set_library(listing)
        if scroll is not None:
            self.grid.verticalScrollBar().setValue(scroll)
        self.update_label()
