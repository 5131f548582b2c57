"""The grid's model: either search hits (ordered by score or date, weak matches hidden unless asked for)
or the library itself, newest first, fetched a page at a time as rows are shown (``LibraryListing``).

Thumbnails are requested lazily for the rows being painted, decoded and scaled off-thread, and kept in a
bounded cache; a placeholder shows until each arrives.
"""
from __future__ import annotations

import io
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image
from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap

from app.gui.tasks import TaskRunner
from app.gui.thumbs import ThumbnailCache
from app.library.search import Hit
from app.library.timefmt import format_time

HitRole = Qt.UserRole + 1
PAGE = 200  # library rows fetched at a time
MAX_PAGES = 50  # library pages kept in memory (10,000 rows); others are fetched again when shown
MAX_ICONS = 800  # decoded thumbnails kept (about 80 KB each at 160 px)


def placeholder_icon(size: int, text: str = "…") -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor("#3a3f44"))
    painter = QPainter(pixmap)
    painter.setPen(QColor("#9aa0a6"))
    painter.drawText(pixmap.rect(), Qt.AlignCenter, text)
    painter.end()
    return QIcon(pixmap)


@dataclass
class Section:
    """Consecutive rows under one header ("May 2024"); an empty title draws no header."""

    title: str
    start: int
    count: int
    period: str | None = None  # "2024-05" / "2024-05-17" / "2024" (the timeline's key), None if undated


@dataclass
class LibraryListing:
    """The library under some filters: its size, its sections (months or days) and the pages fetched so
    far. ``fetch(offset, limit)`` returns hits and may block: it runs on a worker."""

    total: int
    sections: list[Section]
    fetch: Callable[[int, int], list[Hit]]
    pages: OrderedDict[int, list[Hit]] = field(default_factory=OrderedDict)
    requested: set[int] = field(default_factory=set)
    scroll: int = 0  # where the grid was when search results replaced it
    current_row: int = -1

    def hit(self, row: int) -> Hit | None:
        page = self.pages.get(row // PAGE)
        if page is None:
            return None
        self.pages.move_to_end(row // PAGE)
        return page[row % PAGE] if row % PAGE < len(page) else None

    def store(self, page: int, hits: list[Hit]) -> None:
        self.pages[page] = hits
        self.requested.discard(page)
        while len(self.pages) > MAX_PAGES:
            self.pages.popitem(last=False)


class ResultsModel(QAbstractListModel):
    def __init__(self, runner: TaskRunner, thumbs: ThumbnailCache, icon_size: int = 160, parent=None):
        super().__init__(parent)
        self.runner, self.thumbs, self.icon_size = runner, thumbs, icon_size
        self._all: list[Hit] = []
        self._hits: list[Hit] = []
        self.library: LibraryListing | None = None  # browsing: the library instead of hits
        self.show_weak = False
        self.sort = "relevance"  # relevance | date
        self._icons: OrderedDict[str, QIcon] = OrderedDict()
        self._requested: dict[str, int] = {}  # thumbnail key -> the row that asked for it
        self._placeholder = placeholder_icon(icon_size)
        self._broken = placeholder_icon(icon_size, "?")

    # -- contents ------------------------------------------------------------------------------
    @property
    def browsing(self) -> bool:
        return self.library is not None

    def set_hits(self, hits: list[Hit]) -> None:
        self.library = None
        self._all = list(hits)
        self._refresh()

    def set_library(self, listing: LibraryListing) -> None:
        """Show the library (newest first) instead of hits."""
        self.beginResetModel()
        self.library = listing
        self.endResetModel()
        self._forget_queued_thumbnails()

    def set_show_weak(self, show: bool) -> None:
        self.show_weak = show
        if not self.browsing:
            self._refresh()

    def set_sort(self, sort: str) -> None:
        self.sort = sort
        if not self.browsing:
            self._refresh()

    def set_icon_size(self, size: int) -> None:
        """Thumbnails at another size: icons made smaller are kept (scaled down when drawn), larger ones remade."""
        if size > self.icon_size:
            self._icons.clear()
        self.icon_size = size
        self._placeholder, self._broken = placeholder_icon(size), placeholder_icon(size, "?")
        self._forget_queued_thumbnails()

    def _refresh(self) -> None:
        hits = [h for h in self._all if self.show_weak or not h.weak]
        if self.sort == "date":
            hits.sort(key=lambda h: h.record.date or 0.0, reverse=True)
        # relevance: the service's own order (best first; hybrid search fuses meaning and names)
        self.beginResetModel()
        self._hits = hits
        self.endResetModel()
        self._forget_queued_thumbnails()

    def sections(self) -> list[Section]:
        if self.library is not None:
            return self.library.sections
        return [Section("", 0, len(self._hits))]

    def hidden_count(self) -> int:
        return 0 if self.browsing else len(self._all) - len(self._hits)

    def hit(self, row: int) -> Hit | None:
        if self.library is not None:
            if not 0 <= row < self.library.total:
                return None
            hit = self.library.hit(row)
            if hit is None:
                self._fetch_page(self.library, row // PAGE)
            return hit
        return self._hits[row] if 0 <= row < len(self._hits) else None

    def hits(self) -> list[Hit]:
        """The hits shown (browsing: the rows fetched so far, in order)."""
        if self.library is not None:
            return [h for _, page in sorted(self.library.pages.items()) for h in page]
        return list(self._hits)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt override
        if parent.isValid():
            return 0
        return self.library.total if self.library is not None else len(self._hits)

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole):
        if not index.isValid():
            return None
        if role == Qt.SizeHintRole:
            return QSize(self.icon_size + 16, self.icon_size + 36)
        hit = self.hit(index.row())
        if hit is None:
            return self._placeholder if role == Qt.DecorationRole else None
        if role == Qt.DisplayRole:
            name = os.path.basename(hit.path)
            return f"▶ {format_time(hit.timestamp)}  {name}" if hit.kind == "video" else name
        if role == Qt.DecorationRole:
            return self._icon(hit, index.row())
        if role == Qt.ToolTipRole:
            if self.browsing:
                return hit.path
            weak = " (weak match)" if hit.weak else ""
            return f"{hit.path}\nscore {hit.score:.3f}{weak}"
        if role == Qt.ForegroundRole and hit.weak:
            return QColor("#8a8f94")  # below the relevance cut-off: shown only on request, dimmed
        if role == HitRole:
            return hit
        return None

    def _fetch_page(self, listing: LibraryListing, page: int) -> None:
        if page in listing.requested:
            return
        listing.requested.add(page)
        self.runner.run_task(lambda: listing.fetch(page * PAGE, PAGE),
                             lambda hits, error: self._page_ready(listing, page, hits, error), pool="browse")

    def _page_ready(self, listing: LibraryListing, page: int, hits, error) -> None:
        if error is not None:
            listing.requested.discard(page)
            return
        listing.store(page, hits)
        if self.library is listing and hits:
            first = page * PAGE
            self.dataChanged.emit(self.index(first), self.index(min(first + len(hits), listing.total) - 1))

    # -- thumbnails ----------------------------------------------------------------------------
    @staticmethod
    def _key(hit: Hit) -> str:
        return f"{hit.path}|{hit.timestamp}"

    def _icon(self, hit: Hit, row: int) -> QIcon:
        key = self._key(hit)
        icon = self._icons.get(key)
        if icon is not None:
            self._icons.move_to_end(key)
            return icon
        if key not in self._requested:
            self._requested[key] = row
            path, timestamp, size = hit.path, hit.timestamp, self.icon_size
            self.runner.run_task(lambda: self._decoded(path, timestamp, size),
                                 lambda image, error, key=key: self._thumb_ready(key, image, error),
                                 pool="thumbnails")
        return self._placeholder

    def _decoded(self, path: str, timestamp: float | None, size: int) -> QImage:
        """On a worker: the cached thumbnail file (made when missing), decoded and scaled for the grid. A
        cached file that does not decode is made again, once."""
        image = decoded_thumbnail(self.thumbs.read(path, timestamp))
        if image.isNull():
            self.thumbs.discard(path, timestamp)
            image = decoded_thumbnail(self.thumbs.read(path, timestamp))
        return image.scaled(size, size, Qt.KeepAspectRatio, Qt.SmoothTransformation) if not image.isNull() else image

    def _thumb_ready(self, key: str, image: QImage | None, error: BaseException | None) -> None:
        row = self._requested.pop(key, None)
        icon = self._broken
        if error is None and image is not None and not image.isNull():
            icon = QIcon(QPixmap.fromImage(image))
        self._icons[key] = icon
        while len(self._icons) > MAX_ICONS:
            self._icons.popitem(last=False)
        if row is not None and row < self.rowCount():
            hit = self.library.hit(row) if self.library is not None else self.hit(row)
            if hit is not None and self._key(hit) == key:
                index = self.index(row)
                self.dataChanged.emit(index, index, [Qt.DecorationRole])

    def _forget_queued_thumbnails(self) -> None:
        """Drop thumbnail requests not started (rows no longer shown); rows shown again ask anew."""
        self.runner.clear("thumbnails")
        self._requested.clear()

    def scrolled(self) -> None:
        """The grid moved: thumbnails queued for rows scrolled past need not be made now."""
        self._forget_queued_thumbnails()

    def thumbnails_ready(self) -> int:
        return sum(1 for h in self.hits() if self._key(h) in self._icons)


def decoded_thumbnail(data: bytes) -> QImage:
    """A thumbnail file's bytes as a QImage (null when they do not decode), decoded by Pillow on the worker.
    Not ``QImage.fromData``: Qt's format probing (its SVG plugin) takes a QObject lock while PySide holds the
    GIL, and deadlocked against the GUI thread disconnecting a signal under that lock (seen on a loaded
    machine: every thread waiting)."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            rgb = opened.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return QImage()
    return QImage(rgb.tobytes(), rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()
