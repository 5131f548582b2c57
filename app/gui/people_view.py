"""The People view: one face per person with their photo count ("Grace · 42 photos"), named people first and
then by how often someone appears. A name is typed in place (double-click or F2), one person dragged onto
another merges them, a right-click hides, forgets or names a person, a click shows that person's faces beside,
where a right-click on a face that is someone else says "Not this person" (it becomes a person of its own).
Above them, a strip of suggestions ("Is this Grace?", "Same person?") to answer Yes or No
(``app/gui/people_suggestions.py``).

Everything that reads or writes the library runs through ``TaskRunner`` (``app.library.people.People``
methods); the view only shows what comes back, and an error (a person merged meanwhile) as a line above.
"""
from __future__ import annotations

from PIL.ImageQt import ImageQt
from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QSplitter,
    QStyledItemDelegate,
    QVBoxLayout,
    QWidget,
)

from app.gui.people_suggestions import SuggestionStrip
from app.gui.tasks import TaskRunner
from app.library.people import People, Person, face_crop

ICON = 96
FACE_CACHE = 2000  # face thumbnails kept (~37 kB each): a list shown again decodes no photo again
PERSON_ID = Qt.UserRole + 1
PERSON_NAME = Qt.UserRole + 2  # the person's name ("" when unnamed): what the editor starts from
HIDDEN = Qt.UserRole + 3
FACE_ID = Qt.UserRole + 4  # on a face in the photos list
HINT = "Type a name under a face · drag one person onto another to merge · right-click for more"


def person_text(person: Person) -> str:
    """What a person's icon says: "Grace · 42 photos" (an unnamed one: "person 7 · 3 photos")."""
    count = f"{person.photos} photo{'s' if person.photos != 1 else ''}"
    return f"{person.label()} · {count}" + (" (hidden)" if person.hidden else "")


class NameEditor(QStyledItemDelegate):
    """Typing in place edits the name alone, not the count shown with it; an unnamed person starts empty."""

    def setEditorData(self, editor, index) -> None:  # noqa: N802 - Qt override
        editor.setText(index.data(PERSON_NAME) or "")
        editor.setPlaceholderText("Type a name")
        editor.selectAll()


class PeopleList(QListWidget):
    """People as icons; dropping one onto another asks to merge them (``merge_requested(source, target)``)."""

    merge_requested = Signal(int, int)

    def __init__(self) -> None:
        super().__init__()
        self.setViewMode(QListWidget.IconMode)
        self.setIconSize(QSize(ICON, ICON))
        self.setGridSize(QSize(ICON + 64, ICON + 48))
        self.setResizeMode(QListWidget.Adjust)
        self.setWordWrap(True)
        self.setDragDropMode(QAbstractItemView.InternalMove)
        self.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed)
        self.setItemDelegate(NameEditor(self))
        self.setContextMenuPolicy(Qt.CustomContextMenu)

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        source = self.currentItem()
        target = self.itemAt(event.position().toPoint())
        event.ignore()  # the list never reorders itself: a drop is a merge or nothing
        if source is not None and target is not None and source is not target:
            self.merge_requested.emit(source.data(PERSON_ID), target.data(PERSON_ID))


class PeopleView(QWidget):
    """People of the library beside the faces of the one chosen. ``changed`` follows a name, merge, move,
    hide or forget that was stored (the main window's person filter lists the names anew)."""

    changed = Signal()

    def __init__(self, people: People, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.people, self.runner = people, runner
        self.hint = QLabel(HINT)
        self.hint.setWordWrap(True)
        self.show_hidden = QCheckBox("Show hidden people")
        self.suggestions = SuggestionStrip(people, runner)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.list = PeopleList()
        self.photos = QListWidget()
        self.photos.setViewMode(QListWidget.IconMode)
        self.photos.setIconSize(QSize(ICON, ICON))
        self.photos.setResizeMode(QListWidget.Adjust)
        self.photos.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.photos.setContextMenuPolicy(Qt.CustomContextMenu)
        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(self.list)
        splitter.addWidget(self.photos)
        top = QHBoxLayout()
        top.addWidget(self.hint, 1)
        top.addWidget(self.show_hidden)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.suggestions)
        layout.addWidget(self.message)
        layout.addWidget(splitter, 1)
        self._filling = False
        self.shown_person: int | None = None  # whose faces the photos list shows
        # (photo, box) -> face thumbnail, written on the GUI thread; keyed by what the face is, not by its id,
        # which SQLite may give to a new face once the old one is forgotten
        self._faces: dict[tuple, QImage] = {}
        self.list.itemChanged.connect(self._renamed)
        self.list.itemClicked.connect(lambda item: self.show_photos(item.data(PERSON_ID)))
        self.list.merge_requested.connect(self.merge)
        self.list.customContextMenuRequested.connect(self._person_menu_at)
        self.photos.customContextMenuRequested.connect(self._face_menu_at)
        self.show_hidden.toggled.connect(self.refresh)
        self.suggestions.answered.connect(lambda error: self._changed(None, error))

    # -- reads -------------------------------------------------------------------------------
    def refresh(self) -> None:
        include_hidden = self.show_hidden.isChecked()
        self.runner.run_task(lambda: self.people.list(include_hidden=include_hidden, min_photos=1), self._listed)
        self.suggestions.refresh()

    def _listed(self, found, error) -> None:
        if error is not None:
            return self.message.setText(str(error))
        self._filling = True
        self.list.clear()
        for person in found:  # as People.list orders them: named first, then by number of photos
            item = QListWidgetItem(person_text(person))
            item.setData(PERSON_ID, person.id)
            item.setData(PERSON_NAME, person.name or "")
            item.setData(HIDDEN, person.hidden)
            item.setToolTip(f"{person.label()}: {person.photos} photo{'s' if person.photos != 1 else ''}, "
                            f"{person.faces} face{'s' if person.faces != 1 else ''}")
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
            key = (face.path, tuple(face.box), face.at_s)
            cached = self._faces.get(key)
            return key, cached if cached is not None else ImageQt(face_crop(face.path, face.box, ICON, at_s=face.at_s)
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

        self.runner.run_task(make, done, pool="faces")

    def _item(self, person_id: int) -> QListWidgetItem | None:
        return next((self.list.item(row) for row in range(self.list.count())
                     if self.list.item(row).data(PERSON_ID) == person_id), None)

    def show_photos(self, person_id: int, quiet: bool = False) -> None:
        """Show a person's faces (each cut from its photo) below the people; ``quiet``: a person gone
        meanwhile (merged, forgotten) only empties the list."""
        def gather():
            return [(face.id, face.path, ImageQt(face_crop(face.path, face.box, ICON, margin=1.5, at_s=face.at_s)
                                                 .convert("RGBA")).copy())
                    for face in self.people.faces(person_id, limit=200)]

        def done(found, error) -> None:
            if error is not None and quiet:
                self.shown_person = None
                return self.photos.clear()
            if error is not None:
                return self.message.setText(str(error))
            self.shown_person = person_id
            self.photos.clear()
            for face_id, path, image in found:
                item = QListWidgetItem(QIcon(QPixmap.fromImage(image)), "")
                item.setData(FACE_ID, face_id)
                item.setToolTip(path)
                self.photos.addItem(item)

        self.runner.run_task(gather, done, pool="faces")

    # -- menus -------------------------------------------------------------------------------
    def person_menu(self, item: QListWidgetItem) -> QMenu:
        """The right-click menu of one person: name, hide (or show again), forget."""
        person_id, hidden = item.data(PERSON_ID), bool(item.data(HIDDEN))
        menu = QMenu(self)
        menu.addAction("Name…", lambda: self.list.editItem(item))
        if hidden:
            menu.addAction("Show again", lambda: self.hide(person_id, False))
        else:
            menu.addAction("Hide", lambda: self.hide(person_id, True))
        menu.addAction("Forget…", lambda: self.forget(person_id, item.data(PERSON_NAME) or f"person {person_id}"))
        return menu

    def face_menu(self, faces: list[int]) -> QMenu:
        """The right-click menu of the faces chosen on a person's page: "Not this person"."""
        menu = QMenu(self)
        label = "Not this person" if len(faces) == 1 else f"Not this person ({len(faces)} faces)"
        menu.addAction(label, lambda: self.not_this_person(faces))
        return menu

    def _person_menu_at(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is not None:
            self.person_menu(item).exec(self.list.viewport().mapToGlobal(pos))

    def _face_menu_at(self, pos: QPoint) -> None:
        item = self.photos.itemAt(pos)
        if item is None:
            return
        chosen = [i.data(FACE_ID) for i in self.photos.selectedItems()]
        faces = chosen if item.data(FACE_ID) in chosen else [item.data(FACE_ID)]
        self.face_menu(faces).exec(self.photos.viewport().mapToGlobal(pos))

    def confirm(self, text: str) -> bool:
        """Ask before something that cannot be undone (a test replaces this)."""
        return QMessageBox.question(self, "People", text) == QMessageBox.Yes

    # -- a person's decisions ----------------------------------------------------------------
    def _renamed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        person_id, typed, current = item.data(PERSON_ID), item.text().strip(), item.data(PERSON_NAME) or ""
        if typed == current or (not typed and not current):  # nothing changed: show the count again
            return self.refresh()
        self.runner.run_task(lambda: self.people.name(person_id, typed or None), self._changed)

    def merge(self, source: int, target: int) -> None:
        self.runner.run_task(lambda: self.people.merge(source, target), self._changed)

    def hide(self, person_id: int, hidden: bool) -> None:
        self.runner.run_task(lambda: self.people.hide(person_id, hidden), self._changed)

    def forget(self, person_id: int, label: str) -> None:
        if self.confirm(f"Forget {label}? Their faces are no longer grouped or searchable by name; "
                        "the photos stay."):
            self.runner.run_task(lambda: self.people.forget(person_id), self._changed)

    def not_this_person(self, faces: list[int]) -> None:
        """Each face becomes a person of its own (placed by you: grouping leaves it there)."""
        self.runner.run_task(lambda: [self.people.move(face_id, "new") for face_id in faces], self._changed)

    def _changed(self, _, error) -> None:
        self.message.setText("" if error is None else str(error))
        self.refresh()
        if self.shown_person is not None:
            self.show_photos(self.shown_person, quiet=True)
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
