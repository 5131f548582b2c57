"""``ElidedLabel``: one line of plain text, shortened in the middle to the width the layout gives it.

A plain QLabel asks for its whole text's width as its minimum, and a window grows to its minimum but never
shrinks back: the indexing bar's current file (a long path, with no spaces to wrap at) widened a window asked
for at 1280x800 to 1433 px while the sample library was indexed (issue 32)."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QSizePolicy

MIN_CHARS = 12  # the least it shows: enough for "Indexing · …"


class ElidedLabel(QLabel):
    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setTextFormat(Qt.PlainText)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt override
        self._full = text
        self._elide()
        self.updateGeometry()

    def text(self) -> str:
        """The whole text, not the shortened one shown."""
        return self._full

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 2 * self.margin() + 4,
                     super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(self.fontMetrics().averageCharWidth() * MIN_CHARS, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.ElideMiddle, max(1, self.contentsRect().width()))
        if shown != super().text():
            super().setText(shown)
