"""Small controllers of the main window, each with its own signals: the folder watcher, drops and
pastes, and the model switch (indexing itself is ``IndexingController``)."""
from __future__ import annotations

import io
import os

from PIL import Image
from PySide6.QtCore import QBuffer, QFileSystemWatcher, QIODevice, QObject, QTimer, Signal
from PySide6.QtGui import QPixmap

from app.gui.indexing import IndexingController
from app.gui.panels import basename
from app.gui.service import LibraryService
from app.gui.settings import Settings
from cots_core.media import media_kind


class FolderWatcher(QObject):
    """Watches the library's folders (and their subfolders one level down: a full tree may exceed the
    OS's watch limit); ``changed`` fires once things have been quiet for ``delay_ms``."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None, delay_ms: int = 3000):
        super().__init__(parent)
        self.watcher = QFileSystemWatcher(self)
        self.quiet = QTimer(self, singleShot=True, interval=delay_ms)
        self.watcher.directoryChanged.connect(lambda _: self.quiet.start())
        self.quiet.timeout.connect(self.changed)

    def watch(self, folders: list[str]) -> None:
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        watched = [f for f in folders if os.path.isdir(f)]
        for folder in folders:
            try:
                watched += [e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")][:200]
            except OSError:
                continue
        if watched:
            self.watcher.addPaths(watched)


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
