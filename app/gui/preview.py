"""Space bar preview: a large view of the current result in its own window (Space or Esc closes)."""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PreviewWindow(QWidget):
    """Shows hits made large by ``cache`` (a ``ThumbnailCache`` of previews), fetched through ``runner``."""

    def __init__(self, runner, cache, parent=None):
        super().__init__(parent, Qt.Tool)
        self.runner, self.cache = runner, cache
        self.label = QLabel("…", alignment=Qt.AlignCenter)
        self.label.setMinimumSize(640, 480)
        self.label.setStyleSheet("background: black; color: #9aa0a6;")
        QVBoxLayout(self).addWidget(self.label)
        for key in (Qt.Key_Space, Qt.Key_Escape):
            QShortcut(QKeySequence(key), self, self.close)
        self.path = None

    def toggle(self, hit) -> None:
        if self.isVisible() and self.path == hit.path:
            self.close()
            return
        self.path = hit.path
        self.setWindowTitle(hit.path)
        self.label.setText("…")
        self.show()
        self.raise_()
        self.runner.run_task(lambda: str(self.cache.get(hit.path, hit.timestamp)),
                             lambda path, error: self.path == hit.path and self._show(None if error else path),
                             pool="general")  # not "thumbnails": the grid drops that queue as it scrolls

    def _show(self, path: str | None) -> None:
        pixmap = QPixmap(path) if path else QPixmap()
        if pixmap.isNull():
            self.label.setText("No preview")
        else:
            self.label.setPixmap(pixmap.scaled(self.label.size(), Qt.KeepAspectRatio, Qt.SmoothTransformation))


class Previewer(QObject):
    """The window's Space bar preview: one ``PreviewWindow``, made on the first Space."""

    def __init__(self, runner, cache, parent: QWidget):
        super().__init__(parent)
        self.runner, self.cache = runner, cache
        self.window: PreviewWindow | None = None

    def toggle(self, hit) -> None:
        if self.window is None:
            self.window = PreviewWindow(self.runner, self.cache, self.parent())
        self.window.toggle(hit)

    def close(self) -> bool:
        """Close the preview if it is open (Esc closes it before it clears the search); whether it was."""
        if self.window is None or not self.window.isVisible():
            return False
        self.window.close()
        return True
