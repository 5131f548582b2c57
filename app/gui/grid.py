"""The photo grid: thumbnails of a ``ResultsModel`` in sections under headers ("May 2024"), laid out by
arithmetic from the sections' sizes (no per-item layout pass, so 100,000 rows cost what 100 do), with
its own keys: arrows, Page Up/Down, Home/End, Enter opens, Space previews, Ctrl +/- zoom."""
from __future__ import annotations

import bisect
import math

from PySide6.QtCore import QItemSelection, QModelIndex, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QFont, QPainter, QRegion
from PySide6.QtWidgets import QAbstractItemView, QStyle, QStyleOptionViewItem

from app.gui.results import HitRole, ResultsModel, Section
from app.library.search import Hit

MARGIN = 8
HEADER = 34  # height of a section's header
MIN_ICON, MAX_ICON, ZOOM_STEP = 96, 256, 32
DAY_HEADERS_FROM = 224  # icon size from which the library is grouped by day instead of month


class ResultsGrid(QAbstractItemView):
    """``hit_selected(hit or None)`` when the current item changes; ``open_requested(hit)`` on Enter or a
    double click; ``preview_requested(hit)`` on Space; ``zoomed(icon size)``; ``scrolled()``."""

    hit_selected = Signal(object)
    open_requested = Signal(object)
    preview_requested = Signal(object)
    zoomed = Signal(int)

    def __init__(self, model: ResultsModel, parent=None):
        super().__init__(parent)
        self._tops: list[int] = []  # y of each section's top, in content coordinates (set before any Qt
        self._starts: list[int] = []  # call: Qt calls indexAt/scrollTo back while being set up)
        self._height = 0
        self.setModel(model)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setVerticalScrollMode(QAbstractItemView.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setIconSize(QSize(model.icon_size, model.icon_size))
        model.modelReset.connect(self.relayout)
        model.rowsInserted.connect(self.relayout)
        model.rowsRemoved.connect(self.relayout)
        self.selectionModel().currentChanged.connect(self._current_changed)
        self.activated.connect(lambda index: self.open_requested.emit(index.data(HitRole)))
        self.verticalScrollBar().valueChanged.connect(lambda *_: model.scrolled())
        self.relayout()

    def _current_changed(self, current: QModelIndex, *_) -> None:
        self.hit_selected.emit(current.data(HitRole))

    # -- geometry ------------------------------------------------------------------------------
    def cell(self) -> QSize:
        size = self.model().icon_size
        return QSize(size + 24, size + 44)

    def columns(self) -> int:
        return max(1, (self.viewport().width() - 2 * MARGIN) // self.cell().width())

    def sections(self) -> list[Section]:
        return self.model().sections()

    def relayout(self) -> None:
        """Section positions from their sizes and the column count; called on resets, resizes and zoom."""
        columns, cell = self.columns(), self.cell()
        self._tops, self._starts, y = [], [], MARGIN
        for section in self.sections():
            self._tops.append(y)
            self._starts.append(section.start)
            y += (HEADER if section.title else 0) + math.ceil(section.count / columns) * cell.height()
        self._height = y + MARGIN
        self._update_scroll_range()
        self.viewport().update()

    def _update_scroll_range(self) -> None:
        bar = self.verticalScrollBar()
        bar.setRange(0, max(0, self._height - self.viewport().height()))
        bar.setPageStep(self.viewport().height())
        bar.setSingleStep(max(1, self.cell().height() // 3))

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        anchor = self.first_visible_row()  # keeps the first visible item in view
        super().resizeEvent(event)
        self.relayout()
        if anchor is not None and self.verticalOffset():
            self.scrollTo(self.model().index(anchor, 0), QAbstractItemView.PositionAtTop)

    def _section_of(self, row: int) -> int:
        return max(0, bisect.bisect_right(self._starts, row) - 1)

    def _content_rect(self, row: int) -> QRect:
        s = self._section_of(row)
        section, columns, cell = self.sections()[s], self.columns(), self.cell()
        line, column = divmod(row - section.start, columns)
        top = self._tops[s] + (HEADER if section.title else 0) + line * cell.height()
        return QRect(MARGIN + column * cell.width(), top, cell.width(), cell.height())

    def visualRect(self, index: QModelIndex) -> QRect:  # noqa: N802 - Qt override
        if not index.isValid() or not self._tops:
            return QRect()
        return self._content_rect(index.row()).translated(0, -self.verticalOffset())

    def indexAt(self, point: QPoint) -> QModelIndex:  # noqa: N802 - Qt override
        y = point.y() + self.verticalOffset()
        s = bisect.bisect_right(self._tops, y) - 1
        if s < 0:
            return QModelIndex()
        section, columns, cell = self.sections()[s], self.columns(), self.cell()
        inside = y - self._tops[s] - (HEADER if section.title else 0)
        column = (point.x() - MARGIN) // cell.width()
        position = (inside // cell.height()) * columns + column
        if inside < 0 or not 0 <= column < columns or not 0 <= position < section.count:
            return QModelIndex()
        return self.model().index(section.start + position, 0)

    def scrollTo(self, index: QModelIndex, hint=QAbstractItemView.EnsureVisible) -> None:  # noqa: N802
        if not index.isValid():
            return
        rect, bar = self._content_rect(index.row()), self.verticalScrollBar()
        s = self._section_of(index.row())
        if self.sections()[s].title and rect.top() - HEADER == self._tops[s]:
            rect.setTop(self._tops[s])  # the first line of a section: show its header too
        if hint == QAbstractItemView.PositionAtTop or rect.top() < bar.value():
            bar.setValue(rect.top() - MARGIN)
        elif rect.bottom() > bar.value() + self.viewport().height():
            bar.setValue(rect.bottom() - self.viewport().height() + MARGIN)

    def horizontalOffset(self) -> int:  # noqa: N802 - Qt override
        return 0

    def verticalOffset(self) -> int:  # noqa: N802 - Qt override
        return self.verticalScrollBar().value()

    def isIndexHidden(self, index: QModelIndex) -> bool:  # noqa: N802 - Qt override
        return False

    def setSelection(self, rect: QRect, command) -> None:  # noqa: N802 - Qt override
        index = self.indexAt(rect.center())
        selection = QItemSelection(index, index) if index.isValid() else QItemSelection()
        self.selectionModel().select(selection, command)

    def visualRegionForSelection(self, selection: QItemSelection) -> QRegion:  # noqa: N802 - Qt override
        region = QRegion()
        for index in selection.indexes():
            region += self.visualRect(index)
        return region

    # -- keys ----------------------------------------------------------------------------------
    def moveCursor(self, action, modifiers) -> QModelIndex:  # noqa: N802 - Qt override
        rows, current = self.model().rowCount(), self.currentIndex()
        if not rows:
            return QModelIndex()
        row = current.row() if current.isValid() else -1
        if row < 0 or action == QAbstractItemView.MoveHome:
            target = 0
        elif action == QAbstractItemView.MoveEnd:
            target = rows - 1
        elif action in (QAbstractItemView.MoveLeft, QAbstractItemView.MovePrevious):
            target = row - 1
        elif action in (QAbstractItemView.MoveRight, QAbstractItemView.MoveNext):
            target = row + 1
        elif action in (QAbstractItemView.MoveDown, QAbstractItemView.MoveUp):
            target = self._vertical_neighbour(row, action == QAbstractItemView.MoveDown)
        else:  # a page up or down: the item a viewport's height away, at the same x
            rect = self.visualRect(current)
            step = self.viewport().height() * (1 if action == QAbstractItemView.MovePageDown else -1)
            found = self.indexAt(QPoint(rect.center().x(), max(1, min(rect.center().y() + step,
                                                                        self.viewport().height() - 1))))
            target = found.row() if found.isValid() else (rows - 1 if step > 0 else 0)
        return self.model().index(max(0, min(rows - 1, target)), 0)

    def _vertical_neighbour(self, row: int, down: bool) -> int:
        """The item above or below ``row`` in the same column, crossing into the next/previous section."""
        columns, s = self.columns(), self._section_of(row)
        sections = self.sections()
        section = sections[s]
        position = row - section.start
        column = position % columns
        if down:
            if position + columns < section.count:
                return row + columns
            if position // columns < (section.count - 1) // columns:  # a short last line below
                return section.start + section.count - 1
            if s + 1 < len(sections):
                return sections[s + 1].start + min(column, sections[s + 1].count - 1)
            return row
        if position >= columns:
            return row - columns
        if s > 0:
            previous = sections[s - 1]
            return previous.start + min((previous.count - 1) // columns * columns + column, previous.count - 1)
        return row

    def first_visible_row(self) -> int | None:
        """The first item at least partly in view (None when empty)."""
        top = self.verticalOffset()
        s = bisect.bisect_right(self._tops, top) - 1
        if s < 0 or not self.model().rowCount():
            return None
        section = self.sections()[s]
        inside = max(0, top - self._tops[s] - (HEADER if section.title else 0))
        return min(section.start + inside // self.cell().height() * self.columns(),
                   section.start + max(0, section.count - 1))

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

    def zoom(self, steps: int) -> None:
        """Bigger (steps > 0) or smaller thumbnails, keeping the current (or first visible) item in view."""
        self.set_icon_size(self.model().icon_size + steps * ZOOM_STEP)

    def set_icon_size(self, size: int) -> None:
        size = max(MIN_ICON, min(MAX_ICON, size))
        if size == self.model().icon_size:
            return
        first = self.first_visible_row()
        anchor = self.currentIndex().row() if self.currentIndex().isValid() else first
        self.model().set_icon_size(size)
        self.setIconSize(QSize(size, size))
        self.relayout()
        if anchor is not None and self.verticalOffset():
            self.scrollTo(self.model().index(anchor, 0), QAbstractItemView.PositionAtTop)
        self.zoomed.emit(size)

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.modifiers() & Qt.ControlModifier:
            self.zoom(1 if event.angleDelta().y() > 0 else -1)
            return event.accept()
        super().wheelEvent(event)

    # -- painting ------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self.viewport())
        top, bottom = self.verticalOffset(), self.verticalOffset() + self.viewport().height()
        first = max(0, bisect.bisect_right(self._tops, top) - 1)
        for s in range(first, len(self._tops)):
            if self._tops[s] > bottom:
                break
            self._paint_section(painter, s, top, bottom)
        painter.end()

    def _paint_section(self, painter: QPainter, s: int, top: int, bottom: int) -> None:
        section, columns, cell = self.sections()[s], self.columns(), self.cell()
        y = self._tops[s]
        if section.title:
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.25)
            font.setBold(True)
            painter.setFont(font)
            painter.setPen(self.palette().text().color())
            painter.drawText(QRect(MARGIN, y - top, self.viewport().width() - 2 * MARGIN, HEADER),
                             Qt.AlignLeft | Qt.AlignVCenter, section.title)
            painter.setFont(self.font())
            y += HEADER
        first_line = max(0, (top - y) // cell.height())
        last_line = min(math.ceil(section.count / columns) - 1, (bottom - y) // cell.height())
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        option.decorationPosition = QStyleOptionViewItem.Top
        option.decorationAlignment = Qt.AlignCenter
        option.displayAlignment = Qt.AlignHCenter | Qt.AlignTop
        option.decorationSize = self.iconSize()
        option.features |= QStyleOptionViewItem.WrapText
        option.textElideMode = Qt.ElideMiddle
        selection, current = self.selectionModel(), self.currentIndex()
        for line in range(first_line, last_line + 1):
            for column in range(columns):
                position = line * columns + column
                if position >= section.count:
                    break
                index = self.model().index(section.start + position, 0)
                option.rect = QRect(MARGIN + column * cell.width(), y + line * cell.height() - top,
                                    cell.width(), cell.height()).adjusted(4, 4, -4, -4)
                option.state = QStyle.State_Enabled
                if selection.isSelected(index):
                    option.state |= QStyle.State_Selected
                if index == current and self.hasFocus():
                    option.state |= QStyle.State_HasFocus
                self.itemDelegate().paint(painter, option, index)
