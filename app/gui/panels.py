"""Side panels: the selected item's details, and the "image to text" results of a dropped image."""
from __future__ import annotations

import os

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui import actions
from app.gui.face_naming import FaceBoxes
from app.library.dates import format_local
from app.library.search import Hit
from app.library.signals import box_colours, detail_rows
from app.library.timefmt import format_time

PREVIEW = 320


def signal_fields() -> tuple[str, ...]:
    """The detail pane's rows filled from the signals (hidden when empty), as they declare them."""
    return tuple(dict.fromkeys(row.label for _, row in detail_rows()))


def describe_facts(facts: dict) -> dict[str, str]:
    """The detail pane's signal rows shown from a hit's facts, as the signals declare them;
    rows of a signal's text are filled later (``signal_texts``)."""
    return {row.label: row.show(facts) for _, row in detail_rows() if not row.from_text}


def signal_texts(texts: dict[str, str]) -> dict[str, str]:
    """The detail pane's rows shown from the signals' stored texts (signal -> text), e.g. recognised text."""
    return {row.label: row.show(texts.get(signal, "")) for signal, row in detail_rows() if row.from_text}


def draw_boxes(pixmap: QPixmap, boxes: list[tuple]) -> QPixmap:
    """A copy of ``pixmap`` with the boxes (signal, x, y, w, h, score, label in fractions) of the signals that
    declare a ``box_colour`` drawn on it, each in its signal's colour."""
    colours = box_colours()
    drawn = [b for b in boxes if b[0] in colours]
    if not drawn or pixmap.isNull():
        return pixmap
    out = QPixmap(pixmap)
    painter = QPainter(out)
    for signal, x, y, w, h, *_ in drawn:
        painter.setPen(QPen(QColor(colours[signal]), 2))
        painter.drawRect(QRectF(x * out.width(), y * out.height(), w * out.width(), h * out.height()))
    painter.end()
    return out


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""


def _preview_label() -> QLabel:
    label = QLabel("No selection")
    label.setAlignment(Qt.AlignCenter)
    label.setMinimumSize(PREVIEW, PREVIEW * 3 // 4)
    label.setStyleSheet("background: #202326; color: #9aa0a6;")
    return label


def _texts_table() -> QTableWidget:
    table = QTableWidget(0, 2)
    table.setHorizontalHeaderLabels(["Text", "Score"])
    table.horizontalHeader().setStretchLastSection(False)
    table.horizontalHeader().setSectionResizeMode(0, table.horizontalHeader().ResizeMode.Stretch)
    table.verticalHeader().hide()
    table.setEditTriggers(QTableWidget.NoEditTriggers)
    return table


def fill_texts(table: QTableWidget, texts: list[tuple[str, float]]) -> None:
    table.setRowCount(len(texts))
    for row, (text, score) in enumerate(texts):
        table.setItem(row, 0, QTableWidgetItem(text))
        item = QTableWidgetItem(f"{score:.3f}")
        item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
        table.setItem(row, 1, item)


class DetailPane(QWidget):
    """Preview, facts and actions of the selected result. With a ``runner``, ``service`` and ``previews``
    cache it fetches the preview, best texts and signal details of each hit it shows (off-thread);
    "Show in folder" and "Copy path" it does itself, "Open" and "Find similar" it asks for. A face box on
    the preview names or moves its face (``face_boxes``, ``app/gui/face_naming.py``)."""

    open_requested = Signal(object)
    reveal_requested = Signal(object)
    similar_requested = Signal(object)
    copy_requested = Signal(object)

    def __init__(self, runner=None, service=None, previews=None, parent=None):
        super().__init__(parent)
        self.runner, self.service, self.previews = runner, service, previews
        self.hit: Hit | None = None
        self._pixmap = QPixmap()  # the preview as loaded, before boxes are drawn
        self._boxes: list[tuple] = []
        layout = QVBoxLayout(self)
        self.preview = _preview_label()
        layout.addWidget(self.preview)
        self.face_boxes = FaceBoxes(self.preview, runner, service)
        self.face_boxes.changed.connect(lambda: self.hit is not None and self._fetch_signal_details(self.hit))
        form = self.form = QFormLayout()
        self.signal_fields = signal_fields()
        self.fields = {name: QLabel() for name in ("Path", "Date", "Size", "Dimensions", "Moment", "Score",
                                                   *self.signal_fields)}
        for name, label in self.fields.items():
            label.setTextInteractionFlags(Qt.TextSelectableByMouse)
            label.setWordWrap(True)
            form.addRow(name, label)
        layout.addLayout(form)
        layout.addWidget(QLabel("Best-matching texts"))
        self.texts = _texts_table()
        layout.addWidget(self.texts, 1)
        buttons = QHBoxLayout()
        self.buttons = {}
        for title, signal in (("Open", self.open_requested), ("Show in folder", self.reveal_requested),
                              ("Find similar", self.similar_requested), ("Copy path", self.copy_requested)):
            button = QPushButton(title)
            button.clicked.connect(lambda _=False, s=signal: self.hit and s.emit(self.hit))
            buttons.addWidget(button)
            self.buttons[title] = button
        layout.addLayout(buttons)
        self.reveal_requested.connect(lambda hit: actions.show_in_folder(hit.path))
        self.copy_requested.connect(lambda hit: actions.copy_path(hit.path))
        self.show_hit(None)

    def show_hit(self, hit: Hit | None) -> None:
        self._show_facts(hit)
        if hit is not None and self.runner is not None:
            self._fetch(hit)

    def _fetch(self, hit: Hit) -> None:
        """The preview, best texts and signal details of ``hit``; an answer for an older hit is dropped."""
        self.runner.run_task(lambda: str(self.previews.get(hit.path, hit.timestamp)),
                             lambda path, error: self.hit is hit and self.set_preview(None if error else path),
                             pool="general")  # not "thumbnails": the grid drops that queue as it scrolls
        self.runner.run_task(lambda: self.service.texts_for(hit),
                             lambda texts, error: self.hit is hit and not error and self.set_texts(texts),
                             pool="interactive")
        self._fetch_signal_details(hit)

    def _fetch_signal_details(self, hit: Hit) -> None:
        self.runner.run_task(lambda: self.service.signal_details(hit),
                             lambda details, error: self.hit is hit and not error and
                             self.set_signal_details(details), pool="interactive")

    def _show_facts(self, hit: Hit | None) -> None:
        self.hit = hit
        self.face_boxes.set_faces([])  # the last photo's boxes answer no more
        for button in self.buttons.values():
            button.setEnabled(hit is not None)
        if hit is None:
            for label in self.fields.values():
                label.clear()
            self.preview.setPixmap(QPixmap())
            self.preview.setText("No selection")
            fill_texts(self.texts, [])
            for name in self.signal_fields:
                self.form.setRowVisible(self.fields[name], False)
            return
        self.fields["Path"].setText(hit.path)
        record = hit.record
        self.fields["Date"].setText(format_local(record.date))
        self.fields["Size"].setText(human_size(record.size))
        self.fields["Dimensions"].setText(f"{record.width} × {record.height}" if record.width else "")
        self.fields["Moment"].setText(format_time(hit.timestamp) if hit.kind == "video" else "")
        self.form.setRowVisible(self.fields["Moment"], hit.kind == "video")  # photos have no moment
        self.fields["Score"].setText(f"{hit.score:.3f}" + (" (weak match)" if hit.weak else ""))
        self.preview.setText("…")
        fill_texts(self.texts, [])
        self._pixmap, self._boxes = QPixmap(), []
        for name, value in {**describe_facts(hit.facts), **signal_texts({})}.items():
            self.fields[name].setText(value)
            self.form.setRowVisible(self.fields[name], bool(value))

    def set_signal_details(self, details) -> None:
        """The selected item's rows from the signals' texts (recognised text: first lines) and face boxes
        (``SignalDetails``)."""
        for name, text in signal_texts(details.texts).items():
            self.fields[name].setText(text)
            self.form.setRowVisible(self.fields[name], bool(text))
        self._boxes = list(details.boxes)
        self.face_boxes.set_faces(details.faces)
        self._show_pixmap()

    def set_preview(self, path: str | None) -> None:
        pixmap = QPixmap(path) if path else QPixmap()
        if pixmap.isNull():
            self.preview.setText("No preview")
            return
        self._pixmap = pixmap.scaled(PREVIEW, PREVIEW, Qt.KeepAspectRatio, Qt.SmoothTransformation)
        self._show_pixmap()

    def _show_pixmap(self) -> None:
        if not self._pixmap.isNull():
            self.preview.setPixmap(draw_boxes(self._pixmap, self._boxes))

    def set_texts(self, texts: list[tuple[str, float]]) -> None:
        fill_texts(self.texts, texts)


class ImageToTextPanel(QWidget):
    """A dropped or pasted image and the texts that match it best, with their scores."""

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.title = QLabel("Drop or paste an image to see which texts match it")
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        self.preview = _preview_label()
        self.preview.setText("Drop an image here")
        layout.addWidget(self.preview)
        self.texts = _texts_table()
        layout.addWidget(self.texts, 1)

    def show_image(self, name: str, pixmap: QPixmap | None) -> None:
        self.title.setText(f"Texts that match {name}:")
        if pixmap is not None and not pixmap.isNull():
            self.preview.setPixmap(pixmap.scaled(PREVIEW, PREVIEW, Qt.KeepAspectRatio, Qt.SmoothTransformation))
        fill_texts(self.texts, [])

    def set_texts(self, texts: list[tuple[str, float]]) -> None:
        fill_texts(self.texts, texts)

    def texts_shown(self) -> list[str]:
        return [self.texts.item(r, 0).text() for r in range(self.texts.rowCount())]


def basename(path: str) -> str:
    return os.path.basename(path.rstrip("/\\")) or path
