"""The Model menu's choice of models (the list of ``cots models``, the current one checked) and
"Download a model…", which fetches a Hugging Face CLIP/SigLIP model on a worker with progress in the
status bar, then offers to switch to it."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QInputDialog, QMenu, QStatusBar, QWidget

from app.gui.tasks import TaskRunner

DOWNLOAD_HINT = "A CLIP or SigLIP model on the Hugging Face hub, as ORG/NAME (e.g. openai/clip-vit-base-patch32):"


class ModelMenu(QObject):
    """Keeps the models section of ``menu`` up to date; ``chosen(source)`` when the person picks one (in the
    menu, or "Switch to it" once it is downloaded), ``downloaded(repo_id)`` / ``download_failed(message)``
    when a download ends. A download's progress shows in ``status_bar``; how it ended, as a
    ``notice(text, level, choices)``."""

    chosen = Signal(str)
    notice = Signal(str, str, object)
    downloaded = Signal(str)
    download_failed = Signal(str)
    download_progress = Signal(str, int, object)  # repo id, bytes done, bytes total (or None); from the worker

    def __init__(self, menu: QMenu, runner: TaskRunner, current: Callable[[], str], parent: QWidget,
                 status_bar: QStatusBar):
        super().__init__(parent)
        self.menu, self.runner, self.current = menu, runner, current
        self.group = QActionGroup(self)
        self.group.setExclusive(True)
        self.model_actions: list[QAction] = []
        self.separator = menu.addSeparator()
        self.download_action = QAction("Download a model…", self)
        self.download_action.triggered.connect(self.ask_download)
        menu.addAction(self.download_action)
        self.downloading: str | None = None
        menu.aboutToShow.connect(self.refresh)
        self.download_progress.connect(
            lambda repo_id, done, total: status_bar.showMessage(progress_text(repo_id, done, total)))
        self.download_failed.connect(lambda reason: (status_bar.clearMessage(),
                                                     self.notice.emit(f"No download: {reason}", "error", None)))
        self.downloaded.connect(lambda repo_id: (status_bar.clearMessage(), self.notice.emit(
            f"{repo_id} is downloaded", "success", [("Switch to it", lambda: self.chosen.emit(repo_id))])))

    def refresh(self) -> None:
        """List the models again (a worker reads the folders) and rebuild the menu section."""
        from app.library.model_catalog import list_models

        self.runner.run_task(list_models, self._show)

    def _show(self, entries, error) -> None:
        if error is not None:
            return
        for action in self.model_actions:
            self.menu.removeAction(action)
            self.group.removeAction(action)
            action.deleteLater()
        current = self.current()
        self.model_actions = []
        for entry in entries:
            text = f"{entry.label} ({entry.kind}" + (f", {entry.embed_dim}-d" if entry.embed_dim else "") + ")"
            action = QAction(text + (" — unreadable" if entry.unreadable else ""), self, checkable=True)
            action.setData(entry.source)
            action.setEnabled(not entry.unreadable)
            action.setChecked(entry.source == current)
            action.triggered.connect(lambda _=False, source=entry.source: self._choose(source))
            self.group.addAction(action)
            self.menu.insertAction(self.separator, action)
            self.model_actions.append(action)

    def _choose(self, source: str) -> None:
        if source != self.current():
            self.chosen.emit(source)

    def ask_download(self) -> None:
        repo_id, ok = QInputDialog.getText(self.parent(), "Download a model", DOWNLOAD_HINT)
        if ok and repo_id.strip():
            self.download(repo_id.strip())

    def download(self, repo_id: str) -> bool:
        """Start downloading ``repo_id`` on a worker; False (and ``download_failed``) when it cannot start."""
        from app.library.transfer_bar import transfer_bar_class
        from cots_core import hub

        if self.downloading:
            self.download_failed.emit(f"{self.downloading} is still downloading")
            return False
        if not hub.looks_like_hub_id(repo_id):
            self.download_failed.emit(f"{repo_id!r} is not a hub id: give ORG/NAME, e.g. openai/clip-vit-base-patch32")
            return False
        self.downloading = repo_id
        # the worker only emits a signal: the status bar is updated on the GUI thread
        report = transfer_bar_class(lambda done, total: self.download_progress.emit(repo_id, done, total))
        self.runner.run_task(lambda: hub.download(repo_id, tqdm_class=report), self._download_done)
        return True

    def _download_done(self, folder, error) -> None:
        repo_id, self.downloading = self.downloading, None
        if error is not None:
            self.download_failed.emit(str(error).splitlines()[0] if str(error) else type(error).__name__)
            return
        self.refresh()
        self.downloaded.emit(repo_id)


def progress_text(repo_id: str, done: int, total: int | None) -> str:
    megabytes = f"{done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else "")
    percent = f"{100 * done // total}% " if total else ""
    return f"Downloading {repo_id}: {percent}({megabytes})"
