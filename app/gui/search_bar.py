"""The row above the results: search box (debounced), filters and sort, the weak-match toggle.

The built-in filters are kind, folder and dates; after them comes one control per filter the signals
declare (``app.library.signals.fact_filters``, in registry order): a combo of choices with photo counts
(places, cameras) or a checkbox (with people)."""
from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDateEdit, QHBoxLayout, QLabel, QLineEdit, QWidget

from app.library.dates import EARLIEST_YEAR, LATEST_YEAR, local_timestamp
from app.library.search import Filters
from app.library.signals import FactFilter, fact_filters
from app.library.signals.base import CHECK
from cots_core.media import MEDIA_KINDS

# A pause this long in typing runs the query: searching a 100,000-item library takes 40-70 ms on 2 cores
# (bench/gui_100k.py), so a keystroke's results show within ~150 ms; a stale answer is dropped by its generation.
DEBOUNCE_MS = 80


def filter_control(declared: FactFilter) -> QComboBox | QCheckBox:
    """The search bar's control for one declared signal filter (unconnected)."""
    if declared.control == CHECK:
        control = QCheckBox(declared.label)
    else:
        control = QComboBox()
        control.addItem(declared.label, None)
    control.setToolTip(declared.tooltip)
    return control


class SearchBar(QWidget):
    query_changed = Signal(str)  # debounced typing, Enter, or a filter change
    show_weak_changed = Signal(bool)
    sort_changed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.box = QLineEdit()
        self.box.setPlaceholderText("Search your photos and videos: “a dog on the beach”   (Ctrl+F or /)")
        self.box.setClearButtonEnabled(True)
        self.kind = QComboBox()
        self.kind.addItem("Images and videos", None)
        for kind in MEDIA_KINDS.values():
            self.kind.addItem(kind.plural.capitalize(), kind.name)
        self.folder = QComboBox()
        self.folder.addItem("All folders", None)
        # the signals' filters, by name: QComboBox for a choice, QCheckBox for an on/off one
        self.controls: dict[str, QComboBox | QCheckBox] = {f.name: filter_control(f) for f in fact_filters()}
        self.person = QComboBox()  # named people (`cots people name`, Library > People)
        self.person.addItem("All people", None)
        self.person.setToolTip("Only photos of this person (name people in Library > People…)")
        self._make_dates()
        self.sort = QComboBox()
        self.sort.addItem("By relevance", "relevance")
        self.sort.addItem("By date", "date")
        self.weak = QCheckBox("Show weaker matches")
        self.hidden = QLabel()
        self._lay_out()
        self._connect()

    def _make_dates(self) -> None:
        self.dates = QCheckBox("Dates")
        today = QDate.currentDate()
        self.date_from = QDateEdit(today.addYears(-1))
        self.date_to = QDateEdit(today)
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setDateRange(QDate(EARLIEST_YEAR, 1, 1), QDate(LATEST_YEAR, 12, 30))  # +1 day stays a date
            edit.setEnabled(False)

    def _lay_out(self) -> None:
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.box, 3)
        for widget in (self.kind, self.folder, *self.controls.values(), self.person, self.dates, self.date_from, QLabel("–"),
                       self.date_to, self.sort, self.weak, self.hidden):
            layout.addWidget(widget)

    def _connect(self) -> None:
        self.timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.timer.timeout.connect(self.emit_query)
        self.box.textEdited.connect(lambda _: self.timer.start())
        self.box.returnPressed.connect(self.emit_query)
        for combo in (self.kind, self.folder, self.person):
            combo.currentIndexChanged.connect(lambda _: self.emit_query())
        for control in self.controls.values():
            changed = control.toggled if isinstance(control, QCheckBox) else control.currentIndexChanged
            changed.connect(lambda _: self.emit_query())
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
            date_from = local_timestamp(datetime(start.year(), start.month(), start.day()))
            date_to = local_timestamp(datetime(end.year(), end.month(), end.day()))
        values = {name: (True if control.isChecked() else None) if isinstance(control, QCheckBox)
                  else control.currentData() for name, control in self.controls.items()}
        person = self.person.currentData()
        return Filters(self.kind.currentData(), self.folder.currentData(), date_from, date_to, signals=values,
                       people=(person,) if person else ())

    @staticmethod
    def _refill(combo: QComboBox, items: list[tuple[str, str]]) -> None:
        """Replace a filter's choices (label, value) after its first "everything" entry, keeping the current
        one when it is still there."""
        current = combo.currentData()
        combo.blockSignals(True)
        while combo.count() > 1:
            combo.removeItem(1)
        for label, value in items:
            combo.addItem(label, value)
        combo.setCurrentIndex(max(combo.findData(current), 0))
        combo.blockSignals(False)

    def set_folders(self, folders: list[str]) -> None:
        self._refill(self.folder, [(folder, folder) for folder in folders])

    def set_choices(self, name: str, choices: list[tuple[str, int]]) -> None:
        """The choices of the signal filter ``name`` with their photo counts ("Paris, France (12)")."""
        control = self.controls.get(name)
        if isinstance(control, QComboBox):
            self._refill(control, [(f"{choice} ({count})", choice) for choice, count in choices])

    def set_people(self, people: list[tuple[str, int]]) -> None:
        """The library's named people with their photo counts ("Anna (12)")."""
        self._refill(self.person, [(f"{name} ({count})", name) for name, count in people])

    def set_hidden_count(self, count: int) -> None:
        self.hidden.setText(f"{count} weaker hidden" if count else "")

    def clear(self) -> None:
        self.timer.stop()
        self.box.clear()
        self.query_changed.emit("")

    def focus(self) -> None:
        self.box.setFocus(Qt.ShortcutFocusReason)
        self.box.selectAll()
