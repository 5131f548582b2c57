"""The row above the results: search box (debounced), filters and sort, the weak-match toggle."""
from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDateEdit, QHBoxLayout, QLabel, QLineEdit, QWidget

from app.library.search import Filters
from cots_core.media import MEDIA_KINDS

DEBOUNCE_MS = 250


class SearchBar(QWidget):
    query_changed = Signal(str)  # debounced typing, Enter, or a filter change
    show_weak_changed = Signal(bool)
    sort_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.box = QLineEdit()
        self.box.setPlaceholderText("Search your photos and videos: “a dog on the beach”   (Ctrl+F or /)")
        self.box.setClearButtonEnabled(True)
        layout.addWidget(self.box, 3)
        self.kind = QComboBox()
        self.kind.addItem("Images and videos", None)
        for kind in MEDIA_KINDS.values():
            self.kind.addItem(kind.plural.capitalize(), kind.name)
        self.folder = QComboBox()
        self.folder.addItem("All folders", None)
        self.dates = QCheckBox("Dates")
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addYears(-1))
        self.date_to = QDateEdit(today)
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setEnabled(False)
        self.sort = QComboBox()
        self.sort.addItem("By relevance", "relevance")
        self.sort.addItem("By date", "date")
        self.weak = QCheckBox("Show weaker matches")
        self.hidden = QLabel()
        for widget in (self.kind, self.folder, self.dates, self.date_from, QLabel("–"), self.date_to,
                       self.sort, self.weak, self.hidden):
            layout.addWidget(widget)
        self.timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.timer.timeout.connect(self.emit_query)
        self.box.textEdited.connect(lambda _: self.timer.start())
        self.box.returnPressed.connect(self.emit_query)
        for combo in (self.kind, self.folder):
            combo.currentIndexChanged.connect(lambda _: self.emit_query())
        self.dates.toggled.connect(self._dates_toggled)
        self.date_from.dateChanged.connect(lambda _: self.dates.isChecked() and self.emit_query())
        self.date_to.dateChanged.connect(lambda _: self.dates.isChecked() and self.emit_query())
        self.sort.currentIndexChanged.connect(lambda _: self.sort_changed.emit(self.sort.currentData()))
        self.weak.toggled.connect(self.show_weak_changed)

    def _dates_toggled(self, on: bool) -> None:
        self.date_from.setEnabled(on)
        self.date_to.setEnabled(on)
        self.emit_query()

    def emit_query(self) -> None:
        self.timer.stop()
        self.query_changed.emit(self.box.text().strip())

    def filters(self) -> Filters:
        date_from = date_to = None
        if self.dates.isChecked():
            start = self.date_from.date()
            end = self.date_to.date().addDays(1)
            date_from = datetime(start.year(), start.month(), start.day()).timestamp()
            date_to = datetime(end.year(), end.month(), end.day()).timestamp()
        return Filters(self.kind.currentData(), self.folder.currentData(), date_from, date_to)

    def set_folders(self, folders: list[str]) -> None:
        current = self.folder.currentData()
        self.folder.blockSignals(True)
        self.folder.clear()
        self.folder.addItem("All folders", None)
        for folder in folders:
            self.folder.addItem(folder, folder)
        index = self.folder.findData(current)
        self.folder.setCurrentIndex(max(index, 0))
        self.folder.blockSignals(False)

    def set_hidden_count(self, count: int) -> None:
        self.hidden.setText(f"{count} weaker hidden" if count else "")

    def clear(self) -> None:
        self.timer.stop()
        self.box.clear()
        self.query_changed.emit("")

    def focus(self) -> None:
        self.box.setFocus(Qt.ShortcutFocusReason)
        self.box.selectAll()
