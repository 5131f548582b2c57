"""The window's status bar: how much is indexed (and how many files failed), the fine-tuning progress and
the model (loading, its name, not loaded); passing messages, such as a download's progress, on the left."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from app.gui.search_controller import plural
from app.gui.service import Counts


class StatusBar(QStatusBar):
    def __init__(self, finetune_bar: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.counts_label = QLabel()
        self.model_status = QLabel()
        self.addWidget(self.counts_label, 1)
        self.addPermanentWidget(finetune_bar)
        self.addPermanentWidget(self.model_status)

    def show_counts(self, counts: Counts) -> None:
        text = f"{plural(counts.images, 'photo')} · {plural(counts.videos, 'video')} indexed"
        if counts.failed:
            text += f" · {counts.failed} failed"
        self.counts_label.setText(text)

    def show_model(self, text: str) -> None:
        self.model_status.setText(f"Model: {text}")
