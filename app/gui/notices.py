"""Non-blocking notices: a message with its reason, an optional action, never a modal dialog."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

STYLES = {"info": "#1f3b57", "error": "#5a1f1f", "success": "#1f4d2b"}


class Notice(QFrame):
    def __init__(self, text: str, level: str, actions: list[tuple[str, Callable[[], None]]], parent=None):
        super().__init__(parent)
        self.text, self.dismissed = text, False
        self.setStyleSheet(f"QFrame {{ background: {STYLES.get(level, STYLES['info'])}; color: white; "
                           "border-radius: 4px; } QPushButton { color: black; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        layout.addWidget(self.label, 1)
        self.buttons: dict[str, QPushButton] = {}
        for title, callback in actions:
            button = QPushButton(title)
            button.clicked.connect(lambda _=False, cb=callback: (cb(), self.dismiss()))
            layout.addWidget(button)
            self.buttons[title] = button
        close = QPushButton("✕")
        close.setFlat(True)
        close.clicked.connect(self.dismiss)
        layout.addWidget(close)

    def dismiss(self) -> None:
        self.dismissed = True
        self.hide()
        self.deleteLater()


class NoticeArea(QWidget):
    """A stack of notices above the results; info notices fade out on their own."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)
        self.history: list[str] = []

    def show_notice(self, text: str, level: str = "info",
                    actions: list[tuple[str, Callable[[], None]]] | None = None,
                    timeout_ms: int | None = None) -> Notice:
        notice = Notice(text, level, actions or [], self)
        self.box.addWidget(notice)
        self.history.append(text)
        if timeout_ms is None:
            timeout_ms = 0 if (actions or level == "error") else 8000
        if timeout_ms:
            QTimer.singleShot(timeout_ms, notice, notice.dismiss)
        return notice

    def notices(self) -> list[Notice]:
        return [n for n in self.findChildren(Notice) if not n.dismissed]
