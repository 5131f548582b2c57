"""The library tab: watched folders (add, remove, re-scan) and the files that failed, with reasons."""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.library.signals import toggles


def second_pass_label() -> str:
    """The second-pass checkbox's text, naming the signals that may be turned off (as they declare it)."""
    labels = [toggle.label for toggle in toggles().values()]
    named = " and ".join([", ".join(labels[:-1]), labels[-1]] if len(labels) > 1 else labels)
    return f"Read {named or 'the optional signals'} (a slower pass after indexing)"


class LibraryPanel(QWidget):
    add_requested = Signal()
    remove_requested = Signal(str)
    rescan_requested = Signal()
    second_pass_toggled = Signal(bool)  # read the signals that may be turned off (the slower second pass)

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Watched folders"))
        self.folders = QListWidget()
        layout.addWidget(self.folders, 1)
        buttons = QHBoxLayout()
        self.add_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Remove")
        self.rescan_button = QPushButton("Re-scan")
        for button in (self.add_button, self.remove_button, self.rescan_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.second_pass = QCheckBox(second_pass_label())
        self.second_pass.setChecked(True)
        self.second_pass.setToolTip("Off: new photos are not read for these; the other signals (places, EXIF) "
                                    "are always read. Kept in the library.")
        self.second_pass.clicked.connect(self.second_pass_toggled)
        layout.addWidget(self.second_pass)
        self.failures_label = QLabel("Files that could not be read")
        layout.addWidget(self.failures_label)
        self.failures = QTreeWidget()
        self.failures.setHeaderLabels(["File", "Reason"])
        self.failures.setRootIsDecorated(False)
        layout.addWidget(self.failures, 2)
        self.add_button.clicked.connect(self.add_requested)
        self.rescan_button.clicked.connect(self.rescan_requested)
        self.remove_button.clicked.connect(self._remove)

    def _remove(self) -> None:
        item = self.folders.currentItem()
        if item is not None:
            self.remove_requested.emit(item.text())

    def set_second_pass(self, enabled: bool) -> None:
        """Show the library's setting (without emitting ``second_pass_toggled``)."""
        self.second_pass.blockSignals(True)
        self.second_pass.setChecked(enabled)
        self.second_pass.blockSignals(False)

    def set_folders(self, folders: list[str]) -> None:
        self.folders.clear()
        self.folders.addItems(folders)

    def set_failures(self, failures: list[tuple[str, str]]) -> None:
        self.failures.clear()
        for path, reason in failures:
            item = QTreeWidgetItem([path, reason])
            item.setToolTip(0, path)
            item.setToolTip(1, reason)
            self.failures.addTopLevelItem(item)
        self.failures.resizeColumnToContents(0)
        self.failures_label.setText(f"Files that could not be read ({len(failures)})")

    def failure_rows(self) -> list[tuple[str, str]]:
        return [(self.failures.topLevelItem(i).text(0), self.failures.topLevelItem(i).text(1))
                for i in range(self.failures.topLevelItemCount())]
