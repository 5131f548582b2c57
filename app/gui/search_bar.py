"""The row above the results: search box (debounced), filters (kind, folder, dates, place, camera,
people) and sort, the weak-match toggle."""
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
        self.place = QComboBox()
        self.place.addItem("All places", None)
        self.place.setToolTip("Where the photo was taken (from its GPS position)")
        self.camera = QComboBox()
        self.camera.addItem("All cameras", None)
        self.people = QCheckBox("With people")
        self.people.setToolTip("Only photos in which faces were found")
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
        for widget in (self.kind, self.folder, self.place, self.camera, self.people, self.dates, self.date_from,
                       QLabel("–"), self.date_to, self.sort, self.weak, self.hidden):
            layout.addWidget(widget)
        self.timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.timer.timeout.connect(self.emit_query)
        self.box.textEdited.connect(lambda _: self.timer.start())
        self.box.returnPressed.connect(self.emit_query)
        for combo in (self.kind, self.folder, self.place, self.camera):
            combo.currentIndexChanged.connect(lambda _: self.emit_query())
        self.people.toggled.connect(lambda _: self.emit_query())
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
        return Filters(self.kind.currentData(), self.folder.currentData(), date_from, date_to,
                       place=self.place.currentData(), camera=self.camera.currentData(),
                       with_people=True if self.people.isChecked() else None)

    @staticmethod
    def _refill(combo: QComboBox, everything: str, items: list[tuple[str, str]]) -> None:
        """Replace a filter's choices (label, value), keeping the current one when it is still there."""
        current = combo.currentData()
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(everything, None)
        for label, value in items:
            combo.addItem(label, value)
        combo.setCurrentIndex(max(combo.findData(current), 0))
        combo.blockSignals(False)

    def set_folders(self, folders: list[str]) -> None:
        self._refill(self.folder, "All folders", [(folder, folder) for folder in folders])

    def set_places(self, places: list[tuple[str, int]]) -> None:
        """The library's places with their photo counts ("Paris, France (12)")."""
        self._refill(self.place, "All places", [(f"{place} ({count})", place) for place, count in places])

    def set_cameras(self, cameras: list[tuple[str, int]]) -> None:
        self._refill(self.camera, "All cameras", [(f"{camera} ({count})", camera) for camera, count in cameras])

    def set_hidden_count(self, count: int) -> None:
        self.hidden.setText(f"{count} weaker hidden" if count else "")

    def clear(self) -> None:
        self.timer.stop()
        self.box.clear()
        self.query_changed.emit("")

    def focus(self) -> None:
        self.box.setFocus(Qt.ShortcutFocusReason)
        self.box.selectAll()
