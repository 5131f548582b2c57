"""The People view: one face thumbnail per person; a name is typed in place (double-click or F2), one
person dragged onto another merges them, a click shows that person's photos beside.

Everything that reads or writes the library runs through ``TaskRunner`` (``app.library.people.People``
methods); the view only shows what comes back, and an error (a person merged meanwhile) as a line above.
"""
from __future__ import annotations

from PIL.ImageQt import ImageQt
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.gui.tasks import TaskRunner
from app.library.people import People, face_crop

ICON = 96
FACE_CACHE = 2000  # face thumbnails kept (~37 kB each): a list shown again decodes no photo again
PERSON_ID = Qt.UserRole + 1
SHOWN_NAME = Qt.UserRole + 2  # the label as listed: an itemChanged with other text is a rename


class PeopleList(QListWidget):
    """People as icons; dropping one onto another asks to merge them (``merge_requested(source, target)``)."""

    merge_requested = Signal(int, int)

    def __init__(self) -> None:
        super().__init__()
        self.setViewMode(QListWidget.IconMode)
        self.setIconSize(QSize(ICON, ICON))
        self.setGridSize(QSize(ICON + 30, ICON + 40))
        self.setResizeMode(QListWidget.Adjust)
        self.setWordWrap(True)
        self.setDragDropMode(QAbstractItemView.InternalMove)
        self.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        source = self.currentItem()
        target = self.itemAt(event.position().toPoint())
        event.ignore()  # the list never reorders itself: a drop is a merge or nothing
        if source is not None and target is not None and source is not target:
            self.merge_requested.emit(source.data(PERSON_ID), target.data(PERSON_ID))


class PeopleView(QWidget):
    """People of the library beside the photos of the one chosen. ``changed`` follows a name, merge or
    move that was stored (the main window's person filter lists the names anew)."""

    changed = Signal()

    def __init__(self, people: People, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.people, self.runner = people, runner
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.list = PeopleList()
        self.photos = QListWidget()
        self.photos.setViewMode(QListWidget.IconMode)
        self.photos.setIconSize(QSize(ICON, ICON))
        self.photos.setResizeMode(QListWidget.Adjust)
        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(self.list)
        splitter.addWidget(self.photos)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(splitter, 1)
        self._filling = False
        # (photo, box) -> face thumbnail, written on the GUI thread; keyed by what the face is, not by its id,
        # which SQLite may give to a new face once the old one is forgotten
        self._faces: dict[tuple, QImage] = {}
        self.list.itemChanged.connect(self._renamed)
        self.list.itemClicked.connect(lambda item: self.show_photos(item.data(PERSON_ID)))
        self.list.merge_requested.connect(self.merge)

    # -- reads -------------------------------------------------------------------------------
    def refresh(self) -> None:
        self.runner.run_task(lambda: self.people.list(min_photos=1), self._listed)

    def _listed(self, found, error) -> None:
        if error is not None:
            return self.message.setText(str(error))
        self._filling = True
        self.list.clear()
        for person in found:
            item = QListWidgetItem(person.label())
            item.setData(PERSON_ID, person.id)
            item.setData(SHOWN_NAME, person.label())
            item.setToolTip(f"{person.photos} photo{'s' if person.photos != 1 else ''}")
            item.setFlags(item.flags() | Qt.ItemIsEditable)
            self.list.addItem(item)
            if person.face_id is not None:
                self._load_face(person.id, person.face_id)
        self._filling = False
        if not found:
            self.message.setText("No people yet: faces are found after the photos are indexed.")

    def _load_face(self, person_id: int, face_id: int) -> None:
        def make():
            face = self.people.face(face_id)
            key = (face.path, tuple(face.box))
            cached = self._faces.get(key)
            return key, cached if cached is not None else ImageQt(face_crop(face.path, face.box, ICON)
                                                                  .convert("RGBA")).copy()

        def done(result, error) -> None:
            if error is not None:
                return
            key, image = result
            self._faces[key] = self._faces.pop(key, image)  # the newest last: the oldest go first
            while len(self._faces) > FACE_CACHE:
                del self._faces[next(iter(self._faces))]
            item = self._item(person_id)  # the list may have been refilled meanwhile
            if item is not None:
                self._filling = True
                item.setIcon(QIcon(QPixmap.fromImage(image)))
                self._filling = False

        self.runner.run_task(make, done, pool="thumbnails")

    def _item(self, person_id: int) -> QListWidgetItem | None:
        return next((self.list.item(row) for row in range(self.list.count())
                     if self.list.item(row).data(PERSON_ID) == person_id), None)

    def show_photos(self, person_id: int) -> None:
        def gather():
            return [(face.path, ImageQt(face_crop(face.path, face.box, ICON, margin=1.5).convert("RGBA")).copy())
                    for face in self.people.faces(person_id, limit=200)]

        def done(found, error) -> None:
            if error is not None:
                return self.message.setText(str(error))
            self.photos.clear()
            for path, image in found:
                item = QListWidgetItem(QIcon(QPixmap.fromImage(image)), "")
                item.setToolTip(path)
                self.photos.addItem(item)

        self.runner.run_task(gather, done, pool="thumbnails")

    # -- a person's decisions ----------------------------------------------------------------
    def _renamed(self, item: QListWidgetItem) -> None:
        if self._filling or item.text() == item.data(SHOWN_NAME):
            return
        person_id, name = item.data(PERSON_ID), item.text()
        self.runner.run_task(lambda: self.people.name(person_id, name), self._changed)

    def merge(self, source: int, target: int) -> None:
        self.runner.run_task(lambda: self.people.merge(source, target), self._changed)

    def _changed(self, _, error) -> None:
        self.message.setText("" if error is None else str(error))
        self.refresh()
        if error is None:
            self.changed.emit()


def open_people_view(window) -> PeopleView:
    """Open (or bring forward) the People window of a ``MainWindow`` (its service's library, its runner)."""
    view = getattr(window, "people_view", None)
    if view is None:
        view = window.people_view = PeopleView(People(window.service.library), window.runner)
        view.changed.connect(window.refresh_status)
        view.setWindowTitle("People")
        view.resize(640, 720)
    view.show()
    view.raise_()
    view.refresh()
    return view
