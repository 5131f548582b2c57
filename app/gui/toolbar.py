"""The toolbar above the grid: it hosts the ``SearchBar`` (which builds the search box and the filter
controls and owns their signals) and lays it out so the box stays wide: the box (at least
``MIN_SEARCH_WIDTH``, growing with the window), a "Filters" button that says how many are on, sort and
weak-match toggle on the first row; the filter controls on a second row that wraps and that the button
shows or hides. Nothing here builds filters, so the bar's own set of them can change freely."""
from __future__ import annotations

from datetime import date

from PySide6.QtCore import QDate, QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QLayout, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from app.gui.search_bar import SearchBar
from app.library.search import Filters

MIN_SEARCH_WIDTH = 320


def active_filters(filters: Filters) -> int:
    """How many filters are on (a date range counts once)."""
    dates = (filters.date_from, filters.date_to) != (None, None)
    return (filters.kind is not None) + (filters.folder is not None) + dates + len(filters.signals) \
        + len(filters.people)


def set_date_range(bar: SearchBar, first: date | None, last: date | None) -> None:
    """Turn the bar's date filter on for ``first``..``last`` (days included), or off with ``None``; one
    query follows."""
    if first is None or last is None:
        bar.dates.setChecked(False)
        return
    for edit, day in ((bar.date_from, first), (bar.date_to, last)):
        edit.blockSignals(True)
        edit.setDate(QDate(day.year, day.month, day.day))
        edit.blockSignals(False)
    if bar.dates.isChecked():
        bar.emit_query()
    else:
        bar.dates.setChecked(True)  # enables the edits and asks again


class FlowLayout(QLayout):
    """Widgets left to right, wrapping onto new lines when the width runs out (Qt's flow layout example)."""

    def __init__(self, parent=None, spacing: int = 6):
        super().__init__(parent)
        self._items = []
        self.setSpacing(spacing)
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item) -> None:  # noqa: N802 - Qt override
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):  # noqa: N802 - Qt override
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):  # noqa: N802 - Qt override
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self):  # noqa: N802 - Qt override
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:  # noqa: N802 - Qt override
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return self.minimumSize()

    def minimumSize(self) -> QSize:  # noqa: N802 - Qt override
        size = QSize()
        for item in self._items:
            size = size.expandedTo(item.minimumSize())
        return size

    def _place(self, rect: QRect, move: bool) -> int:
        x, y, line_height = rect.x(), rect.y(), 0
        for item in self._items:
            if item.widget() is not None and item.widget().isHidden():
                continue
            hint = item.sizeHint()
            if x + hint.width() > rect.right() + 1 and line_height:
                x, y, line_height = rect.x(), y + line_height + self.spacing(), 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self.spacing()
            line_height = max(line_height, hint.height())
        return y + line_height - rect.y()


class SearchToolbar(QWidget):
    def __init__(self, bar: SearchBar, parent=None):
        super().__init__(parent)
        self.bar = bar
        bar.setParent(self)
        bar.hide()  # its widgets are laid out here; it keeps their state and signals
        first_row = [bar.sort, bar.weak, bar.hidden]
        taken = []
        while bar.layout().count():
            item = bar.layout().takeAt(0)
            if item.widget() is not None and item.widget() is not bar.box and item.widget() not in first_row:
                taken.append(item.widget())
        bar.box.setMinimumWidth(MIN_SEARCH_WIDTH)
        bar.box.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.filters_button = QPushButton("Filters")
        self.filters_button.setCheckable(True)
        self.filters_button.setToolTip("Kind, folder, dates, place, camera, people")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(bar.box, 1)
        for widget in (self.filters_button, *first_row):
            row.addWidget(widget)
        self.filter_row = QWidget()
        flow = FlowLayout(self.filter_row)
        for widget in taken:
            flow.addWidget(widget)
        self.filter_row.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.filter_row)
        self.filters_button.toggled.connect(self.filter_row.setVisible)
        bar.query_changed.connect(lambda _: self.count_filters())
        self.count_filters()

    def count_filters(self) -> int:
        count = active_filters(self.bar.filters())
        self.filters_button.setText(f"Filters ({count})" if count else "Filters")
        return count

    def filter_widgets(self) -> list[QWidget]:
        layout = self.filter_row.layout()
        return [layout.itemAt(i).widget() for i in range(layout.count())]
