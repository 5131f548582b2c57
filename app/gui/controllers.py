"""Small controllers of the main window, each with its own signals: the library's folders and their
re-scans, the folder watcher, drops and pastes, and the model switch (indexing itself is
``IndexingController``)."""
from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QBuffer, QFileSystemWatcher, QIODevice, QObject, QStandardPaths, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFileDialog, QWidget

from app.gui.indexing import IndexingController
from app.gui.panels import basename
from app.gui.service import IndexSummary, LibraryService
from app.gui.settings import Settings
from app.gui.tasks import TaskRunner
from cots_core.media import media_kind


class FolderWatcher(QObject):
    """Watches the library's folders (and their subfolders one level down: a full tree may exceed the
    OS's watch limit); ``changed`` fires once things have been quiet for ``delay_ms``."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None, delay_ms: int = 3000, runner: TaskRunner | None = None):
        super().__init__(parent)
        self.runner = runner or TaskRunner()
        self.watcher = QFileSystemWatcher(self)
        self.folders: list[str] | None = None  # as last asked for
        self.requests = 0
        self.quiet = QTimer(self, singleShot=True, interval=delay_ms)
        self.watcher.directoryChanged.connect(self._directory_changed)
        self.quiet.timeout.connect(self.changed)

    def _directory_changed(self, _path: str) -> None:
        self.folders = None  # a subfolder may have come or gone: the next ``watch`` lists them again
        self.quiet.start()

    def watch(self, folders: list[str]) -> None:
        """Watch ``folders``; the same list as last time is a no-op. Called at every status refresh: listing a
        folder of 100,000 files on the GUI thread stalled the window for 400-800 ms (bench/gui_100k.py), so
        the subfolders are listed on a worker, from the directory entries alone."""
        if folders == self.folders:
            return
        self.folders = list(folders)
        self.requests += 1
        request = self.requests

        def list_them() -> list[str]:
            watched = [f for f in folders if os.path.isdir(f)]
            for folder in folders:
                watched += subfolders(folder, MAX_SUBFOLDERS)
            return watched

        self.runner.run_task(list_them, lambda watched, error: self._apply(request, watched, error))

    def _apply(self, request: int, watched: list[str] | None, error: BaseException | None) -> None:
        if request != self.requests or error is not None:
            return  # a newer list was asked for meanwhile (or the folders vanished: the next refresh tries)
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        if watched:
            self.watcher.addPaths(watched)


MAX_SUBFOLDERS = 200  # per watched folder: a full tree may exceed the OS's watch limit


def subfolders(folder: str, limit: int) -> list[str]:
    """Up to ``limit`` visible subfolders of ``folder`` (links to folders are not followed), [] if unreadable."""
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                    found.append(entry.path)
                    if len(found) >= limit:
                        break
    except OSError:
        return []
    return found


class DropHandler(QObject):
    """Turns dropped or pasted data into requests: an image -> ``image_dropped(image, name, pixmap)``
    (image: a path or a PIL image), folders -> ``folders_dropped``, anything else -> ``refused(reason)``."""

    image_dropped = Signal(object, str, object)
    folders_dropped = Signal(list)
    refused = Signal(str)

    def handle(self, mime) -> bool:
        """Whether the data was usable (the drop is then accepted)."""
        paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()] if mime.hasUrls() else []
        folders = [p for p in paths if os.path.isdir(p)]
        images = [p for p in paths if media_kind(p) == "image" and os.path.isfile(p)]
        if folders:
            self.folders_dropped.emit(folders)
        if images:
            self.image_dropped.emit(images[0], basename(images[0]), QPixmap(images[0]))
        elif not folders and mime.hasImage():
            qimage = mime.imageData()
            buffer = QBuffer()
            buffer.open(QIODevice.WriteOnly)
            qimage.save(buffer, "PNG")
            image = Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
            self.image_dropped.emit(image, "the pasted image", QPixmap.fromImage(qimage))
        elif paths and not folders:
            self.refused.emit(f"{basename(paths[0])} is not an image cots can read")
            return False
        return bool(folders or images or mime.hasImage())


class ModelSwitcher(QObject):
    """Re-embeds the library with another model through the indexing controller; ``started(source)``,
    then ``switched(model id)`` when done (or the controller's ``failed``); ``refused`` while busy."""

    started = Signal(str)
    switched = Signal(str)
    refused = Signal(str)

    def __init__(self, service: LibraryService, indexing: IndexingController, settings: Settings,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.service, self.indexing, self.settings = service, indexing, settings

    def switch(self, source: str) -> None:
        """Re-embed the library with ``source`` in the background; old embeddings answer meanwhile."""
        if self.indexing.start(lambda on_progress, control: self.service.switch_model(source, on_progress, control),
                               f"Re-embedding with {basename(source)}", on_done=self.switched.emit):
            self.settings["model"] = source
            self.started.emit(source)
        else:
            self.refused.emit("Wait for indexing to finish before switching models")


class FolderController(QObject):
    """The library's folders and the runs that index them: adding (a dialog, a drop, the first-run offer),
    removing, re-scanning. One run at a time: a re-scan asked for during a run follows it; none starts
    before the model has loaded (``set_model_ready``). The window hears ``notice(text, level, choices)``,
    ``status_changed`` (counts and folders to show again) and ``items_changed`` (the items too: during a
    run, as they get indexed, and after it)."""

    notice = Signal(str, str, object)
    status_changed = Signal()
    items_changed = Signal()

    def __init__(self, service: LibraryService, runner: TaskRunner, indexing: IndexingController,
                 settings: Settings, parent: QWidget, auto_index: bool = True):
        super().__init__(parent)
        self.service, self.runner, self.indexing, self.settings = service, runner, indexing, settings
        self.auto_index = auto_index
        self.model_ready = False
        self.rescan_pending = False
        self.status_timer = QTimer(self, interval=2000)  # the counts and results grow during a run
        self.status_timer.timeout.connect(self.items_changed)
        indexing.started.connect(lambda _: self.status_timer.start())
        indexing.finished.connect(self._index_finished)
        indexing.failed.connect(lambda reason: self.notice.emit(f"Indexing stopped: {reason}", "error", None))

    def set_model_ready(self, first_scan: bool = True) -> None:
        """The model has loaded: re-scans may run; ``first_scan`` looks at the folders now (the first run
        offers the standard ones; with ``auto_index``, a re-scan picks up what changed while the app was
        closed)."""
        self.model_ready = True
        if first_scan:
            self.runner.run_task(self.service.folders, self._startup_folders)

    def _startup_folders(self, folders, error) -> None:
        if error is None and not folders and not self.settings["first_run_done"]:
            self.offer_standard_folders()
        elif error is None and folders and self.auto_index:
            self.rescan()

    def offer_standard_folders(self) -> None:
        found = [QStandardPaths.writableLocation(loc) for loc in
                 (QStandardPaths.PicturesLocation, QStandardPaths.MoviesLocation)]
        found = [f for f in dict.fromkeys(found) if f and Path(f).is_dir()]
        choices = [("Choose a folder…", self.choose_folder)]
        if found:
            choices.insert(0, ("Add " + " and ".join(basename(f) for f in found), lambda: self.add_folders(found)))
        self.notice.emit("Welcome! Add the folders where you keep photos and videos to start searching them.",
                         "info", choices)
        self.settings["first_run_done"] = True

    def offer_to_add(self, folders: list[str]) -> None:
        """Dropped folders: ask before adding them."""
        self.notice.emit(f"Add {', '.join(folders)} to the library?", "info",
                         [("Add to library", lambda: self.add_folders(folders))])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.parent(), "Add a folder to the library")
        if folder:
            self.add_folders([folder])

    def add_folders(self, folders: list[str]) -> None:
        def add():
            return [self.service.add_folder(f) for f in folders]
        self.runner.run_task(add, lambda _, error: self.notice.emit(str(error), "error", None) if error else
                             self.rescan())

    def remove_folder(self, folder: str) -> None:
        def remove():
            return self.service.remove_folder(folder)
        self.runner.run_task(remove, lambda n, error: self.notice.emit(str(error), "error", None) if error else (
            self.notice.emit(f"Removed {folder} ({n} items) from the library", "info", None),
            self.status_changed.emit()))

    def rescan(self) -> None:
        if not self.model_ready:
            return
        if self.indexing.running:
            self.rescan_pending = True
            return
        self.indexing.start(self.service.index, "Indexing")
        self.status_changed.emit()

    def _index_finished(self, summary: IndexSummary) -> None:
        if summary.cancelled:
            self.notice.emit("Indexing cancelled; what was indexed is kept", "info", None)
        elif summary.failed:
            self.notice.emit(f"{summary.failed} files could not be read; see the Library tab", "error", None)
        self.run_ended()

    def run_ended(self) -> None:
        """After an indexing run or a model switch: show the library as it is now, then the re-scan that
        was asked for meanwhile."""
        self.status_timer.stop()
        self.items_changed.emit()
        if self.rescan_pending:
            self.rescan_pending = False
            self.rescan()

    def stop(self) -> None:
        self.status_timer.stop()
