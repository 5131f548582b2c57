"""A window that stays true (issue 32, item 4): the counts read as a person writes them."""
from __future__ import annotations

from PySide6.QtWidgets import QWidget

from app.gui.service import Counts
from app.gui.status_bar import StatusBar


def test_the_counts_say_one_photo_and_one_video(qtbot):
    bar = StatusBar(QWidget())
    qtbot.addWidget(bar)
    bar.show_counts(Counts(images=179, videos=1, failed=1))
    assert bar.counts_label.text() == "179 photos · 1 video indexed · 1 failed"
    bar.show_counts(Counts(images=1, videos=2))
    assert bar.counts_label.text() == "1 photo · 2 videos indexed"
