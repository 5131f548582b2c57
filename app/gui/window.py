"""The main window: it builds the components (search bar and controller, results pane and side tabs,
folders and indexing, fine-tuning, drops, model menu, status bar) and connects them to each other; each
component wires its own widgets. It stays at most 200 statements (tests/test_boundaries.py).

It talks to the library only through a ``LibraryService`` and only through ``TaskRunner.run_task``:
no model, database or file work happens on the GUI thread.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QMainWindow, QSplitter, QVBoxLayout, QWidget

from app.gui import actions
from app.gui.app_identity import app_icon
from app.gui.controllers import DropHandler, FolderController, FolderWatcher, ModelSwitcher
from app.gui.face_naming import connect_face_naming
from app.gui.finetune import FineTuneFlow
from app.gui.grid import ResultsGrid
from app.gui.indexing import IndexingBar, IndexingController
from app.gui.library_watch import LibraryWatcher, catch_up
from app.gui.model_menu import ModelMenu
from app.gui.notices import NoticeArea
from app.gui.panels import basename
from app.gui.people_view import open_people_view
from app.gui.preview import Previewer
from app.gui.results import ResultsModel
from app.gui.results_pane import ResultsPane, SideTabs
from app.gui.search_bar import SearchBar
from app.gui.search_controller import SearchController
from app.gui.service import LibraryService
from app.gui.settings import Settings
from app.gui.status_bar import StatusBar
from app.gui.tasks import TaskRunner
from app.gui.thumbs import ThumbnailCache
from app.gui.toolbar import SearchToolbar, set_date_range
from app.library.search import Filters, Hit


class MainWindow(QMainWindow):
    def __init__(self, service: LibraryService, settings: Settings | None = None,
                 thumbs: ThumbnailCache | None = None, runner: TaskRunner | None = None,
                 model_label: str = "model", auto_index: bool = True):
        super().__init__()
        self.setWindowTitle("cots — search your photos and videos")
        self.setWindowIcon(app_icon())  # also where no launcher gave the application its icon (tests, embedding)
        self.service, self.settings = service, settings or Settings()
        self.runner = runner or TaskRunner(self)
        self.thumbs = thumbs or ThumbnailCache()
        self.previews = ThumbnailCache(self.thumbs.folder.parent / "previews", size=1024)
        self.model_label = model_label
        self.model_ready = False
        self.preview = Previewer(self.runner, self.previews, self)
        self._build(auto_index)
        self._connect()
        self.searching.show_library()  # the library itself, before the model has loaded
        self.refresh_status()
        self.load_model()

    # -- layout --------------------------------------------------------------------------------
    def _build(self, auto_index: bool) -> None:
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
        self.folders = FolderController(self.service, self.runner, self.indexing, self.settings, self, auto_index)
        self.setCentralWidget(central)
        self.finetuning = FineTuneFlow(self.settings, self)
        self.setStatusBar(StatusBar(self.finetuning.bar))
        self.counts_label, self.model_status = self.statusBar().counts_label, self.statusBar().model_status
        self.setAcceptDrops(True)
        self.folder_watcher = FolderWatcher(self, runner=self.runner)
        self.drops = DropHandler(self)
        self.switcher = ModelSwitcher(self.service, self.indexing, self.settings, self)
        self.library_watcher = LibraryWatcher(self.service, self.runner, lambda: self.indexing.running, self)
        self._build_menus()
        self.resize(1280, 800)

    def _build_results(self) -> QSplitter:
        """The grid under its header line, zoom slider and timeline and, beside it, the tabs: details,
        image to text, library."""
        splitter = QSplitter(Qt.Horizontal)
        pane = ResultsPane(self.results_label, self.view)
        self.zoom, self.timeline = pane.zoom, pane.timeline
        splitter.addWidget(pane)
        self.tabs = SideTabs(self.runner, self.service, self.previews)
        self.detail, self.image_text, self.library = self.tabs.detail, self.tabs.image_text, self.tabs.library
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([3000, 1000])
        return splitter

    def _build_menus(self) -> None:
        library = self.menuBar().addMenu("&Library")
        for title, slot, key in (("Add folder…", self.folders.choose_folder, None),
                                 ("Re-scan now", self.folders.rescan, "F5"),
                                 ("Paste image", self.paste, None),
                                 # app/gui/people_view.py: name, merge, see a person's photos
                                 ("People…", lambda: open_people_view(self), None),
                                 ("Quit", self.close, QKeySequence.Quit)):  # last, as in every desktop app
            if title == "Quit":
                library.addSeparator()
            action = QAction(title, self)
            if key:
                action.setShortcut(key)
            action.triggered.connect(slot)
            library.addAction(action)
        model = self.menuBar().addMenu("&Model")
        model.addAction(self.finetuning.finetune_action)
        model.addAction(self.finetuning.remember_action)
        model.addSeparator()
        self.current_model = self.model_label  # the library's model (or the one asked for); a switch changes it
        self.model_menu = ModelMenu(model, self.runner, lambda: self.current_model, self, self.statusBar())
        self.model_menu.refresh()

    def _connect(self) -> None:
        self.searching.notice.connect(self.notify)
        self.view.hit_selected.connect(self.show_detail)
        self.view.open_requested.connect(self.open_hit)
        self.view.preview_requested.connect(self.preview.toggle)
        self.detail.open_requested.connect(self.open_hit)
        self.detail.similar_requested.connect(lambda hit: self.searching.find_similar(hit.path))
        connect_face_naming(self)  # a face box on the preview names or moves its face
        self.finetuning.notice.connect(self.notify)
        self.finetuning.switch_requested.connect(self.switch_model)
        self.model_menu.chosen.connect(self.switch_model)
        self.model_menu.notice.connect(self.notify)
        self._connect_library()
        QShortcut(QKeySequence.Find, self, self.search.focus)
        QShortcut(QKeySequence("/"), self, self.search.focus)
        QShortcut(QKeySequence(Qt.Key_Escape), self, self.clear_search)
        QShortcut(QKeySequence.Paste, self, self.paste)
        self._connect_browsing()

    def _connect_browsing(self) -> None:
        """The timeline's date range (the zoom is the results pane's own)."""
        self.timeline.range_chosen.connect(lambda first, last: set_date_range(self.search, first, last))
        self.searching.shown_periods.connect(self.timeline.set_shown)

    def _connect_library(self) -> None:
        """The library tab, the folders and their indexing, the folder and library watchers, drops and the model
        switch."""
        self.library.add_requested.connect(self.folders.choose_folder)
        self.library.remove_requested.connect(self.folders.remove_folder)
        self.library.rescan_requested.connect(self.folders.rescan)
        self.library.second_pass_toggled.connect(
            lambda on: self.runner.run_task(lambda: self.service.set_second_pass(on), lambda _, error: None))
        self.folders.notice.connect(self.notify)
        self.folders.status_changed.connect(self.refresh_status)
        self.folders.items_changed.connect(self.refresh_status)
        self.folders.items_changed.connect(self.searching.refresh)  # results grow as items get indexed
        self.folder_watcher.changed.connect(self.folders.rescan)
        self.library_watcher.changed_outside.connect(lambda: catch_up(self))  # `cots` run elsewhere
        self.drops.folders_dropped.connect(self.folders.offer_to_add)
        self.drops.image_dropped.connect(self.describe_image)
        self.drops.refused.connect(lambda reason: self.notify(reason, "error"))
        self.switcher.switched.connect(self._model_switched)
        self.switcher.started.connect(lambda source: setattr(self, "current_model", source))
        self.switcher.refused.connect(self.notify)

    # -- model and library state ---------------------------------------------------------------
    def load_model(self) -> None:
        self.statusBar().show_model(f"loading {self.model_label}…")
        self.runner.run_task(self.service.load_model, self._model_loaded)

    def _model_loaded(self, model_id, error) -> None:
        if error is not None:
            self.statusBar().show_model("not loaded")
            return self.notify(f"The model could not be loaded: {error}", "error")
        self.model_ready = True
        self.statusBar().show_model(model_id)
        self.refresh_status()
        requested = self.service.pending_switch()
        if requested:  # asked for another model than the one this library was indexed with
            self.notify(f"Re-embedding the library with {basename(requested)}; the current model answers "
                        "searches until it is done.")
            self.switch_model(requested)
        self.folders.set_model_ready(first_scan=not requested)
        self.searching.set_model_ready()

    def refresh_status(self) -> None:
        def gather():
            return (self.service.counts(), self.service.failures(), self.service.folders(),
                    self.service.signal_choices(), dict(self.service.periods(Filters(), "%Y-%m")))
        self.runner.run_task(gather, self._status_ready)

    def _status_ready(self, result, error) -> None:
        if error is not None:
            return
        counts, failures, folders, choices, months = result
        self.statusBar().show_counts(counts)
        if counts.model and self.model_ready:
            self.statusBar().show_model(counts.model)
        self.library.set_failures(failures)
        self.library.set_folders(folders)
        self.search.set_folders(folders)
        for name, items in choices.filters.items():
            self.search.set_choices(name, items)
        self.search.set_people(choices.people)
        self.library.set_second_pass(choices.second_pass)
        self.folder_watcher.watch(folders)
        self.timeline.set_library({month: n for month, n in months.items() if month})

    def _model_switched(self, model_id: str) -> None:
        self.notify(f"Switched to the model {model_id}; the library is re-embedded", "success")
        self.folders.run_ended()

    # -- search, details, opening, preview -----------------------------------------------------
    def clear_search(self) -> None:
        if not self.preview.close():  # Esc closes the preview first
            self.search.clear()
            self.search.focus()

    def show_detail(self, hit: Hit | None) -> None:
        self.tabs.show_hit(hit)

    def open_hit(self, hit: Hit | None) -> None:
        if hit is not None and not actions.open_file(hit.path, hit.timestamp if hit.kind == "video" else None):
            self.notify(f"No application could open {hit.path}", "error")

    # -- drops and paste -----------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.drops.handle(event.mimeData()):  # an image: image to text + similar; a folder: offer to add it
            event.acceptProposedAction()

    def paste(self) -> None:
        if not self.drops.handle(QGuiApplication.clipboard().mimeData()):
            self.notify("The clipboard holds no image or file")

    def describe_image(self, image, name: str, pixmap: QPixmap | None) -> None:
        if not self.model_ready:
            return self.notify("The model is still loading; drop the image again in a moment")
        self.tabs.show_image(name, pixmap)
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
        self.folders.stop()
        self.finetuning.cancel()
        self.runner.shutdown()
        self.service.close()
        self.settings["geometry"] = bytes(self.saveGeometry())
        self.settings.sync()
        super().closeEvent(event)
