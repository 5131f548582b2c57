"""The results grid: thumbnails of a ``ResultsModel``, with its own keys (Enter opens, Space previews)."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QListView

from app.gui.results import HitRole, ResultsModel
from app.library.search import Hit


class ResultsGrid(QListView):
    """``hit_selected(hit or None)`` when the current item changes; ``open_requested(hit)`` on Enter or a
    double click; ``preview_requested(hit)`` on Space."""

    hit_selected = Signal(object)
    open_requested = Signal(object)
    preview_requested = Signal(object)

    def __init__(self, model: ResultsModel, parent=None):
        super().__init__(parent)
        self.setModel(model)
        self.setViewMode(QListView.IconMode)
        self.setIconSize(QSize(model.icon_size, model.icon_size))
        self.setGridSize(QSize(model.icon_size + 24, model.icon_size + 44))
        self.setResizeMode(QListView.Adjust)
        self.setMovement(QListView.Static)
        self.setUniformItemSizes(True)
        self.setWordWrap(True)
        self.selectionModel().currentChanged.connect(lambda current, _: self.hit_selected.emit(current.data(HitRole)))
        self.activated.connect(lambda index: self.open_requested.emit(index.data(HitRole)))

    def current_hit(self) -> Hit | None:
        return self.currentIndex().data(HitRole)

    def select_first(self) -> bool:
        """Focus the grid on its first item (Down from the search box); False when it is empty."""
        if not self.model().rowCount():
            return False
        self.setFocus()
        self.setCurrentIndex(self.model().index(0, 0))
        return True

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        hit = self.current_hit()
        if event.key() in (Qt.Key_Return, Qt.Key_Enter):
            if hit is not None:
                self.open_requested.emit(hit)
            return event.accept()
        if event.key() == Qt.Key_Space:
            if hit is not None:
                self.preview_requested.emit(hit)
            return event.accept()
        super().keyPressEvent(event)
