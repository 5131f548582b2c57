"""The result grid's model: hits ordered by score (or date), weak matches hidden unless asked for,
thumbnails requested lazily and made off-thread, a placeholder until each arrives."""
from __future__ import annotations

import os

from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap

from app.gui.tasks import TaskRunner
from app.gui.thumbs import ThumbnailCache
from app.library.search import Hit
from app.library.timefmt import format_time

HitRole = Qt.UserRole + 1


def placeholder_icon(size: int, text: str = "…") -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor("#3a3f44"))
    painter = QPainter(pixmap)
    painter.setPen(QColor("#9aa0a6"))
    painter.drawText(pixmap.rect(), Qt.AlignCenter, text)
    painter.end()
    return QIcon(pixmap)


class ResultsModel(QAbstractListModel):
    def __init__(self, runner: TaskRunner, thumbs: ThumbnailCache, icon_size: int = 160, parent=None):
        super().__init__(parent)
        self.runner, self.thumbs, self.icon_size = runner, thumbs, icon_size
        self._all: list[Hit] = []
        self._hits: list[Hit] = []
        self.show_weak = False
        self.sort = "relevance"  # relevance | date
        self._icons: dict[str, QIcon] = {}
        self._requested: set[str] = set()
        self._placeholder = placeholder_icon(icon_size)
        self._broken = placeholder_icon(icon_size, "?")

    # -- contents ------------------------------------------------------------------------------
    def set_hits(self, hits: list[Hit]) -> None:
        self._all = list(hits)
        self._refresh()

    def set_show_weak(self, show: bool) -> None:
        self.show_weak = show
        self._refresh()

    def set_sort(self, sort: str) -> None:
        self.sort = sort
        self._refresh()

    def _refresh(self) -> None:
        hits = [h for h in self._all if self.show_weak or not h.weak]
        if self.sort == "date":
            hits.sort(key=lambda h: h.record.date or 0.0, reverse=True)
        # relevance: the service's own order (best first; hybrid search fuses meaning and names)
        self.beginResetModel()
        self._hits = hits
        self.endResetModel()
        self.runner.clear("thumbnails")  # thumbnails of the previous results need not be made now
        self._requested = set(self._icons)

    def hidden_count(self) -> int:
        return len(self._all) - len(self._hits)

    def hit(self, row: int) -> Hit | None:
        return self._hits[row] if 0 <= row < len(self._hits) else None

    def hits(self) -> list[Hit]:
        return list(self._hits)

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self._hits)

    def data(self, index: QModelIndex, role: int = Qt.DisplayRole):
        hit = self.hit(index.row()) if index.isValid() else None
        if hit is None:
            return None
        if role == Qt.DisplayRole:
            name = os.path.basename(hit.path)
            return f"▶ {format_time(hit.timestamp)}  {name}" if hit.kind == "video" else name
        if role == Qt.DecorationRole:
            return self._icon(hit)
        if role == Qt.ToolTipRole:
            weak = " (weak match)" if hit.weak else ""
            return f"{hit.path}\nscore {hit.score:.3f}{weak}"
        if role == Qt.ForegroundRole and hit.weak:
            return QColor("#8a8f94")  # below the relevance cut-off: shown only on request, dimmed
        if role == HitRole:
            return hit
        if role == Qt.SizeHintRole:
            return QSize(self.icon_size + 16, self.icon_size + 36)
        return None

    # -- thumbnails ----------------------------------------------------------------------------
    @staticmethod
    def _key(hit: Hit) -> str:
        return f"{hit.path}|{hit.timestamp}"

    def _icon(self, hit: Hit) -> QIcon:
        key = self._key(hit)
        icon = self._icons.get(key)
        if icon is not None:
            return icon
        if key not in self._requested:
            self._requested.add(key)
            path, timestamp = hit.path, hit.timestamp
            self.runner.run_task(lambda: str(self.thumbs.get(path, timestamp)),
                                 lambda result, error, key=key: self._thumb_ready(key, result, error),
                                 pool="thumbnails")
        return self._placeholder

    def _thumb_ready(self, key: str, result: str | None, error: BaseException | None) -> None:
        icon = self._broken
        if error is None and result:
            pixmap = QPixmap(result)
            if not pixmap.isNull():
                icon = QIcon(pixmap)
        self._icons[key] = icon
        for row, hit in enumerate(self._hits):
            if self._key(hit) == key:
                index = self.index(row)
                self.dataChanged.emit(index, index, [Qt.DecorationRole])

    def thumbnails_ready(self) -> int:
        return sum(1 for h in self._hits if self._key(h) in self._icons)
