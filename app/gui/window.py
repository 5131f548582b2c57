"""The main window: it builds the components (search bar and controller, results grid, side panels,
indexing, fine-tuning, drops) and connects them to each other; each component wires its own widgets.

It talks to the library only through a ``LibraryService`` and only through ``TaskRunner.run_task``:
no model, database or file work happens on the GUI thread.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QSlider,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui import actions
from app.gui.controllers import DropHandler, FolderWatcher, ModelSwitcher
from app.gui.finetune import FineTuneFlow
from app.gui.grid import MAX_ICON, MIN_ICON, ZOOM_STEP, ResultsGrid
from app.gui.indexing import IndexingBar, IndexingController
from app.gui.library_panel import LibraryPanel
from app.gui.model_menu import ModelMenu, progress_text
from app.gui.notices import NoticeArea
from app.gui.panels import DetailPane, ImageToTextPanel, basename
from app.gui.people_view import open_people_view
from app.gui.results import ResultsModel
from app.gui.search_bar import SearchBar
from app.gui.search_controller import SearchController
from app.gui.service import IndexSummary, LibraryService
from app.gui.settings import Settings
from app.gui.tasks import TaskRunner
from app.gui.thumbs import ThumbnailCache
from app.gui.timeline import Timeline
from app.gui.toolbar import SearchToolbar, set_date_range
from app.library.search import Filters, Hit


class MainWindow(QMainWindow):
    def __init__(self, service: LibraryService, settings: Settings | None = None,
                 thumbs: ThumbnailCache | None = None, runner: TaskRunner | None = None,
                 model_label: str = "model", auto_index: bool = True):
        super().__init__()
        self.setWindowTitle("cots — search your photos and videos")
        self.service, self.settings = service, settings or Settings()
        self.runner = runner or TaskRunner(self)
        self.thumbs = thumbs or ThumbnailCache()
        self.previews = ThumbnailCache(self.thumbs.folder.parent / "previews", size=1024)
        self.model_label, self.auto_index = model_label, auto_index
        self.model_ready = False
        self._rescan_pending = False
        self.preview_window = None  # made on the first Space
        self._build()
        self._connect()
        self.searching.show_library()  # the library itself, before the model has loaded
        self.refresh_status()
        self.load_model()

    # -- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        layout = QVBoxLayout(central)
        self.search = SearchBar()
        self.toolbar = SearchToolbar(self.search)
        layout.addWidget(self.toolbar)
        self.notices = NoticeArea()
        layout.addWidget(self.notices)
        self.model = ResultsModel(self.runner, self.thumbs)
        self.view = ResultsGrid(self.model)
        self.searching = SearchController(self.service, self.runner, self.search, self.model, self.view,
                                          self.settings, self)
        self.results_label = self.searching.label
        layout.addWidget(self._build_results(), 1)
        self.indexing = IndexingController(self.runner, self)
        self.indexing_bar = IndexingBar(self.indexing)
        layout.addWidget(self.indexing_bar)
        self.setCentralWidget(central)
        self.finetuning = FineTuneFlow(self.settings, self)
        self._build_status_bar()
        self.setAcceptDrops(True)
        self.folder_watcher = FolderWatcher(self)
        self.drops = DropHandler(self)
        self.switcher = ModelSwitcher(self.service, self.indexing, self.settings, self)
        self.status_timer = QTimer(self, interval=2000)
        self._build_menus()
        self.resize(1280, 800)

    def _build_results(self) -> QSplitter:
        """The grid under its header line, zoom slider and timeline and, beside it, the tabs: details,
        image to text, library."""
        splitter = QSplitter(Qt.Horizontal)
        grid_side = QWidget()
        column = QVBoxLayout(grid_side)
        column.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.addWidget(self.results_label, 1)
        self.zoom = QSlider(Qt.Horizontal, minimum=MIN_ICON, maximum=MAX_ICON, singleStep=ZOOM_STEP,
                            pageStep=ZOOM_STEP, value=self.model.icon_size, maximumWidth=140,
                            toolTip="Thumbnail size (Ctrl + and Ctrl −)")
        header.addWidget(self.zoom)
        column.addLayout(header)
        self.timeline = Timeline()
        column.addWidget(self.timeline)
        column.addWidget(self.view, 1)
        splitter.addWidget(grid_side)
        self.tabs = QTabWidget()
        self.detail = DetailPane(self.runner, self.service, self.previews)
        self.image_text = ImageToTextPanel()
        self.library = LibraryPanel()
        self.tabs.addTab(self.detail, "Details")
        self.tabs.addTab(self.image_text, "Image → text")
        self.tabs.addTab(self.library, "Library")
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([3000, 1000])
        return splitter

    def _build_status_bar(self) -> None:
        self.counts_label = QLabel()
        self.model_status = QLabel()
        self.statusBar().addWidget(self.counts_label, 1)
        self.statusBar().addPermanentWidget(self.finetuning.bar)
        self.statusBar().addPermanentWidget(self.model_status)

    def _build_menus(self) -> None:
        library = self.menuBar().addMenu("&Library")
        for title, slot, key in (("Add folder…", self.choose_folder, None), ("Re-scan now", self.rescan, "F5"),
                                 ("Paste image", self.paste, None), ("Quit", self.close, QKeySequence.Quit)):
            action = QAction(title, self)
            if key:
                action.setShortcut(key)
            action.triggered.connect(slot)
            library.addAction(action)
        people = QAction("People…", self)  # app/gui/people_view.py: name, merge, see a person's photos
        people.triggered.connect(lambda: open_people_view(self))
        library.addAction(people)
        model = self.menuBar().addMenu("&Model")
        model.addAction(self.finetuning.finetune_action)
        model.addAction(self.finetuning.remember_action)
        model.addSeparator()
        self.current_model = self.model_label  # the library's model (or the one asked for); a switch changes it
        self.model_menu = ModelMenu(model, self.runner, lambda: self.current_model, self)
        self.model_menu.refresh()

    def _connect(self) -> None:
        self.searching.notice.connect(self.notify)
        self.view.hit_selected.connect(self.show_detail)
        self.view.open_requested.connect(self.open_hit)
        self.view.preview_requested.connect(self.toggle_preview)
        self.search.box.installEventFilter(self)
        self.detail.open_requested.connect(self.open_hit)
        self.detail.similar_requested.connect(lambda hit: self.searching.find_similar(hit.path))
        self.finetuning.notice.connect(self.notify)
        self.finetuning.switch_requested.connect(self.switch_model)
        self._connect_library()
        self._connect_model_menu()
        QShortcut(QKeySequence.Find, self, self.search.focus)
        QShortcut(QKeySequence("/"), self, self.search.focus)
        QShortcut(QKeySequence(Qt.Key_Escape), self, self.clear_search)
        QShortcut(QKeySequence.Paste, self, self.paste)
        self._connect_browsing()

    def _connect_browsing(self) -> None:
        """Zoom (slider, Ctrl +/−, Ctrl+wheel) and the timeline's date range."""
        self.zoom.valueChanged.connect(self.view.set_icon_size)
        self.view.zoomed.connect(lambda size: (self.zoom.blockSignals(True), self.zoom.setValue(size),
                                               self.zoom.blockSignals(False)))
        for keys, steps in ((QKeySequence.ZoomIn, 1), (QKeySequence("Ctrl+="), 1), (QKeySequence.ZoomOut, -1)):
            QShortcut(keys, self, lambda steps=steps: self.view.zoom(steps))
        self.timeline.range_chosen.connect(lambda first, last: set_date_range(self.search, first, last))
        self.searching.shown_periods.connect(self.timeline.set_shown)

    def _connect_model_menu(self) -> None:
        self.model_menu.chosen.connect(self.switch_model)
        self.model_menu.download_progress.connect(
            lambda repo_id, done, total: self.statusBar().showMessage(progress_text(repo_id, done, total)))
        self.model_menu.download_failed.connect(lambda reason: (self.statusBar().clearMessage(),
                                                                self.notify(f"No download: {reason}", "error")))
        self.model_menu.downloaded.connect(lambda repo_id: (self.statusBar().clearMessage(), self.notify(
            f"{repo_id} is downloaded", "success", [("Switch to it", lambda: self.switch_model(repo_id))])))

    def _connect_library(self) -> None:
        """The library tab, indexing, the folder watcher, drops and the model switch."""
        self.library.add_requested.connect(self.choose_folder)
        self.library.remove_requested.connect(self.remove_folder)
        self.library.rescan_requested.connect(self.rescan)
        self.library.second_pass_toggled.connect(
            lambda on: self.runner.run_task(lambda: self.service.set_second_pass(on), lambda _, error: None))
        self.indexing.finished.connect(self._index_finished)
        self.indexing.failed.connect(lambda reason: self.notify(f"Indexing stopped: {reason}", "error"))
        self.indexing.started.connect(lambda _: self.status_timer.start())
        self.status_timer.timeout.connect(self._tick_during_indexing)
        self.folder_watcher.changed.connect(self.rescan)
        self.drops.folders_dropped.connect(lambda folders: self.notify(
            f"Add {', '.join(folders)} to the library?", "info", [("Add to library", lambda: self.add_folders(folders))]))
        self.drops.image_dropped.connect(self.describe_image)
        self.drops.refused.connect(lambda reason: self.notify(reason, "error"))
        self.switcher.switched.connect(self._model_switched)
        self.switcher.started.connect(lambda source: setattr(self, "current_model", source))
        self.switcher.refused.connect(self.notify)

    # -- model and library state ---------------------------------------------------------------
    def load_model(self) -> None:
        self.model_status.setText(f"Model: loading {self.model_label}…")
        self.runner.run_task(self.service.load_model, self._model_loaded)

    def _model_loaded(self, model_id, error) -> None:
        if error is not None:
            self.model_status.setText("Model: not loaded")
            return self.notify(f"The model could not be loaded: {error}", "error")
        self.model_ready = True
        self.model_status.setText(f"Model: {model_id}")
        self.refresh_status()
        requested = self.service.pending_switch()
        if requested:  # asked for another model than the one this library was indexed with
            self.notify(f"Re-embedding the library with {basename(requested)}; the current model answers "
                        "searches until it is done.")
            self.switch_model(requested)
        else:
            self.runner.run_task(self.service.folders, self._startup_folders)
        self.searching.set_model_ready()

    def _startup_folders(self, folders, error) -> None:
        if error is None and not folders and not self.settings["first_run_done"]:
            self.offer_standard_folders()
        elif error is None and folders and self.auto_index:
            self.rescan()  # picks up what changed while the app was closed

    def offer_standard_folders(self) -> None:
        found = [QStandardPaths.writableLocation(loc) for loc in
                 (QStandardPaths.PicturesLocation, QStandardPaths.MoviesLocation)]
        found = [f for f in dict.fromkeys(found) if f and Path(f).is_dir()]
        choices = [("Choose a folder…", self.choose_folder)]
        if found:
            choices.insert(0, ("Add " + " and ".join(basename(f) for f in found), lambda: self.add_folders(found)))
        self.notify("Welcome! Add the folders where you keep photos and videos to start searching them.",
                    "info", choices)
        self.settings["first_run_done"] = True

    def refresh_status(self) -> None:
        def gather():
            return (self.service.counts(), self.service.failures(), self.service.folders(),
                    self.service.signal_choices(), dict(self.service.periods(Filters(), "%Y-%m")))
        self.runner.run_task(gather, self._status_ready)

    def _status_ready(self, result, error) -> None:
        if error is not None:
            return
        counts, failures, folders, choices, months = result
        text = f"{counts.images} photos · {counts.videos} videos indexed"
        if counts.failed:
            text += f" · {counts.failed} failed"
        self.counts_label.setText(text)
        if counts.model and self.model_ready:
            self.model_status.setText(f"Model: {counts.model}")
        self.library.set_failures(failures)
        self.library.set_folders(folders)
        self.search.set_folders(folders)
        for name, items in choices.filters.items():
            self.search.set_choices(name, items)
        self.search.set_people(choices.people)
        self.library.set_second_pass(choices.second_pass)
        self.folder_watcher.watch(folders)
        self.timeline.set_library({month: n for month, n in months.items() if month})

    # -- folders and indexing ------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder to the library")
        if folder:
            self.add_folders([folder])

    def add_folders(self, folders: list[str]) -> None:
        def add():
            return [self.service.add_folder(f) for f in folders]
        self.runner.run_task(add, lambda _, error: self.notify(str(error), "error") if error else self.rescan())

    def remove_folder(self, folder: str) -> None:
        def remove():
            return self.service.remove_folder(folder)
        self.runner.run_task(remove, lambda n, error: self.notify(str(error), "error") if error else (
            self.notify(f"Removed {folder} ({n} items) from the library"), self.refresh_status()))

    def rescan(self) -> None:
        if not self.model_ready:
            return
        if self.indexing.running:
            self._rescan_pending = True
            return
        self.indexing.start(self.service.index, "Indexing")
        self.refresh_status()

    def _tick_during_indexing(self) -> None:
        self.refresh_status()
        self.searching.refresh()  # results (and the library listed) grow as items get indexed

    def _index_finished(self, summary: IndexSummary) -> None:
        if summary.cancelled:
            self.notify("Indexing cancelled; what was indexed is kept")
        elif summary.failed:
            self.notify(f"{summary.failed} files could not be read; see the Library tab", "error")
        self._after_run()

    def _model_switched(self, model_id: str) -> None:
        self.notify(f"Switched to the model {model_id}; the library is re-embedded", "success")
        self._after_run()

    def _after_run(self) -> None:
        self.status_timer.stop()
        self.refresh_status()
        self.searching.refresh()
        if self._rescan_pending:
            self._rescan_pending = False
            self.rescan()

    # -- search, details, opening, preview -----------------------------------------------------
    def clear_search(self) -> None:
        if self.preview_window is not None and self.preview_window.isVisible():
            return self.preview_window.close()
        self.search.clear()
        self.search.focus()

    def show_detail(self, hit: Hit | None) -> None:
        self.detail.show_hit(hit)
        if hit is not None:
            self.tabs.setCurrentWidget(self.detail)

    def open_hit(self, hit: Hit | None) -> None:
        if hit is not None and not actions.open_file(hit.path, hit.timestamp if hit.kind == "video" else None):
            self.notify(f"No application could open {hit.path}", "error")

    def toggle_preview(self, hit: Hit) -> None:
        from app.gui.preview import PreviewWindow

        if self.preview_window is None:
            self.preview_window = PreviewWindow(self.runner, self.previews, self)
        self.preview_window.toggle(hit)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        """Down in the search box goes to the first result."""
        if watched is self.search.box and event.type() == event.Type.KeyPress and event.key() == Qt.Key_Down:
            return self.view.select_first()
        return super().eventFilter(watched, event)

    # -- drops and paste -----------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.handle_mime(event.mimeData()):
            event.acceptProposedAction()

    def paste(self) -> None:
        if not self.handle_mime(QGuiApplication.clipboard().mimeData()):
            self.notify("The clipboard holds no image or file")

    def handle_mime(self, mime) -> bool:
        """A dropped or pasted image -> image to text + similar; a folder -> offer to add it."""
        return self.drops.handle(mime)

    def describe_image(self, image, name: str, pixmap: QPixmap | None) -> None:
        if not self.model_ready:
            return self.notify("The model is still loading; drop the image again in a moment")
        self.tabs.setCurrentWidget(self.image_text)
        self.image_text.show_image(name, pixmap)
        self.runner.run_task(lambda: self.service.describe(image),
                             lambda texts, error: self.notify(f"Could not read {name}: {error}", "error")
                             if error else self.image_text.set_texts(texts), pool="interactive")
        self.searching.find_similar(image)

    # -- models ---------------------------------------------------------------------------------
    def switch_model(self, source: str) -> None:
        """Re-embed the library with ``source`` in the background; old embeddings answer meanwhile."""
        self.switcher.switch(source)

    # -- notices and closing -------------------------------------------------------------------
    def notify(self, text: str, level: str = "info", choices=None) -> None:
        self.notices.show_notice(text, level, choices)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        """Stop cleanly: cancel indexing (finished items are already committed), wait, then close."""
        if getattr(self, "_closed", False):
            return super().closeEvent(event)
        self._closed = True
        self.indexing.cancel()
        self.status_timer.stop()
        self.finetuning.cancel()
        self.runner.shutdown()
        self.service.close()
        self.settings["geometry"] = bytes(self.saveGeometry())
        self.settings.sync()
        super().closeEvent(event)
