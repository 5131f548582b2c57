"""Space bar preview: a large view of the current result in its own window (Space or Esc closes)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PreviewWindow(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent, Qt.Tool)
        self.label = QLabel("…", alignment=Qt.AlignCenter)
        self.label.setMinimumSize(640, 480)
        self.label.setStyleSheet("background: black; color: #9aa0a6;")
        QVBoxLayout(self).addWidget(self.label)
        for key in (Qt.Key_Space, Qt.Key_Escape):
            QShortcut(QKeySequence(key), self, self.close)
        self.path = None

    def toggle(self, hit, runner, cache) -> None:
        if self.isVisible() and self.path == hit.path:
            self.close()
            return
        self.path = hit.path
        self.setWindowTitle(hit.path)
        self.label.setText("…")
        self.show()
        self.raise_()
        runner.run_task(lambda: str(cache.get(hit.path, hit.timestamp)),
                        lambda path, error: self.path == hit.path and self._show(None if error else path),
                        pool="thumbnails")

    def _show(self, path: str | None) -> None:
        pixmap = QPixmap(path) if path else QPixmap()
        if pixmap.isNull():
            self.label.setText("No preview")
        else:
            self.label.setPixmap(pixmap.scaled(self.label.size(), Qt.KeepAspectRatio, Qt.SmoothTransformation))
