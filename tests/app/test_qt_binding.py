"""The Qt binding the app runs on keeps Python's reference counts: PySide6 6.12.0 on CPython 3.11 dropped a
reference to None on every call of a void method, and after some thousands of repaints the process aborted
("Fatal Python error: none_dealloc"). pyproject.toml keeps that release out; this test catches a binding
with the same fault, whatever its version."""
from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication
from PySide6.QtWidgets import QWidget

CALLS = 2000


def test_void_qt_calls_keep_the_reference_count_of_none(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    before = sys.getrefcount(None)
    for _ in range(CALLS):
        widget.update()
        QCoreApplication.processEvents()
    # other code may take or drop a handful of references meanwhile; the fault took one per call
    assert abs(sys.getrefcount(None) - before) < CALLS // 10
