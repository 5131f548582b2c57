"""The results side of the window: the grid under its header line (what is shown, the thumbnail size) and
the timeline; and, beside it, the tabs of details, image to text and the library."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QTabWidget, QVBoxLayout, QWidget

from app.gui.grid import MAX_ICON, MIN_ICON, ZOOM_STEP, ResultsGrid
from app.gui.library_panel import LibraryPanel
from app.gui.panels import DetailPane, ImageToTextPanel
from app.gui.service import LibraryService
from app.gui.tasks import TaskRunner
from app.gui.thumbs import ThumbnailCache
from app.gui.timeline import Timeline
from app.library.search import Hit


class ResultsPane(QWidget):
    """``label`` and the zoom slider above the timeline and ``grid``. The slider, Ctrl +/− and Ctrl+wheel on
    the grid change the thumbnail size together."""

    def __init__(self, label: QLabel, grid: ResultsGrid, parent: QWidget | None = None):
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.addWidget(label, 1)
        self.zoom = QSlider(Qt.Horizontal, minimum=MIN_ICON, maximum=MAX_ICON, singleStep=ZOOM_STEP,
                            pageStep=ZOOM_STEP, value=grid.model().icon_size, maximumWidth=140,
                            toolTip="Thumbnail size (Ctrl + and Ctrl −)")
        header.addWidget(self.zoom)
        column.addLayout(header)
        self.timeline = Timeline()
        column.addWidget(self.timeline)
        column.addWidget(grid, 1)
        self.zoom.valueChanged.connect(grid.set_icon_size)
        grid.zoomed.connect(self._follow_zoom)
        for keys, steps in ((QKeySequence.ZoomIn, 1), (QKeySequence("Ctrl+="), 1), (QKeySequence.ZoomOut, -1)):
            QShortcut(keys, self, lambda steps=steps: grid.zoom(steps))

    def _follow_zoom(self, size: int) -> None:
        """The grid zoomed itself (Ctrl+wheel): the slider shows it without asking the grid again."""
        self.zoom.blockSignals(True)
        self.zoom.setValue(size)
        self.zoom.blockSignals(False)


class SideTabs(QTabWidget):
    """The tabs beside the grid: a result's details, image to text, and the library's folders and failures."""

    def __init__(self, runner: TaskRunner, service: LibraryService, previews: ThumbnailCache,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.detail = DetailPane(runner, service, previews)
        self.image_text = ImageToTextPanel()
        self.library = LibraryPanel()
        self.addTab(self.detail, "Details")
        self.addTab(self.image_text, "Image → text")
        self.addTab(self.library, "Library")

    def show_hit(self, hit: Hit | None) -> None:
        """A result's details, brought to the front (no result: the pane empties, the tab stays)."""
        self.detail.show_hit(hit)
        if hit is not None:
            self.setCurrentWidget(self.detail)

    def show_image(self, name: str, pixmap: QPixmap | None) -> None:
        """A dropped or pasted image on the image-to-text tab, brought to the front; its texts follow."""
        self.setCurrentWidget(self.image_text)
        self.image_text.show_image(name, pixmap)
