"""Naming a face from the photo it is in. The detail pane's face boxes answer the mouse: hovering one says
whose face it is ("Grace", "unnamed person 7") and "click to name"; a click opens a small popup there with a
name field that completes over the library's names (Enter: ``app.library.people.People.name_face`` says what
a name does), "Not this person" (the face becomes a person of its own) and "Show all photos of this person"
(the People view, at their faces).

Each change runs through the ``LibraryService`` on a worker (``TaskRunner``); ``FaceBoxes.changed`` follows
it, and ``connect_face_naming`` shows it again in the window: the pane, the person filter, the People view.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QCompleter,
    QFrame,
    QLabel,
    QLineEdit,
    QPushButton,
    QStyle,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.gui.people_view import open_people_view
from app.library.people import PhotoFace

CLICK_TO_NAME = "click to name"


def face_tooltip(face: PhotoFace) -> str:
    """What hovering a face box says: "Grace · click to name"."""
    return f"{face.label()} · {CLICK_TO_NAME}"


class FacePopup(QFrame):
    """The popup of one face: a name field completing over ``names``, "Not this person" and "Show all photos
    of this person". It says what was chosen (``named``, ``not_this_person``, ``show_person``) and closes."""

    named = Signal(object, str)  # face, the name typed or chosen
    not_this_person = Signal(object)
    show_person = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.Popup)
        self.setFrameShape(QFrame.StyledPanel)
        self.face: PhotoFace | None = None
        self.title = QLabel()
        self.names = QStringListModel(self)
        self.completer = QCompleter(self.names, self)
        self.completer.setCaseSensitivity(Qt.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchContains)  # "hop" finds "Grace Hopper"
        self.name = QLineEdit(placeholderText="Type a name · Enter")
        self.name.setCompleter(self.completer)
        self.not_this = QPushButton("Not this person")
        self.show_all = QPushButton("Show all photos of this person")
        layout = QVBoxLayout(self)
        for widget in (self.title, self.name, self.not_this, self.show_all):
            layout.addWidget(widget)
        for button in (self.not_this, self.show_all):
            button.setFlat(True)
        self.name.returnPressed.connect(lambda: self._choose(self.named, self.name.text()))
        self.completer.activated.connect(lambda text: self._choose(self.named, text))
        self.not_this.clicked.connect(lambda: self._choose(self.not_this_person))
        self.show_all.clicked.connect(lambda: self._choose(self.show_person))

    def open_for(self, face: PhotoFace, at: QPoint) -> None:
        """Show the popup of ``face`` with its top-left corner at ``at`` (global coordinates)."""
        self.face = face
        self.title.setText(face.label())
        self.name.setText(face.name or "")
        self.name.selectAll()
        self.not_this.setEnabled(face.person_id is not None)
        self.show_all.setEnabled(face.person_id is not None)
        self.adjustSize()
        self.move(at)
        self.show()
        self.name.setFocus()

    def set_names(self, names: list[str]) -> None:
        self.names.setStringList(names)

    def _choose(self, signal, *args) -> None:
        face, self.face = self.face, None  # one choice per opening (Enter in the completion also activates)
        self.completer.popup().hide()
        self.hide()
        if face is not None:
            signal.emit(face, *args)


class FaceBoxes(QObject):
    """The face boxes on the detail pane's ``preview`` label: a tooltip over each and its popup on a click.
    ``changed`` follows a stored name or move (and a failed one: the pane reads the photo's faces again),
    ``failed`` says why one failed, ``person_requested`` asks for a person's page."""

    changed = Signal()
    failed = Signal(str)
    person_requested = Signal(int)

    def __init__(self, preview: QLabel, runner=None, service=None) -> None:
        super().__init__(preview)
        self.preview, self.runner, self.service = preview, runner, service
        self.faces: list[PhotoFace] = []
        self.popup = FacePopup(preview)
        self.popup.named.connect(self.name)
        self.popup.not_this_person.connect(lambda face: self._store(lambda: self.service.move_face(face.id, "new")))
        self.popup.show_person.connect(lambda face: self.person_requested.emit(face.person_id))
        preview.setMouseTracking(True)
        preview.installEventFilter(self)

    def set_faces(self, faces: list[PhotoFace]) -> None:
        """The faces of the photo shown (none: nothing answers the mouse)."""
        self.faces = list(faces)
        self.preview.unsetCursor()

    def face_at(self, pos: QPoint) -> PhotoFace | None:
        """The face whose box holds ``pos`` (the preview label's coordinates); the smallest where boxes
        overlap, None outside every box or when no photo is shown."""
        pixmap = self.preview.pixmap()
        if not self.faces or pixmap is None or pixmap.isNull():
            return None
        shown = QStyle.alignedRect(self.preview.layoutDirection(), self.preview.alignment(),
                                   pixmap.deviceIndependentSize().toSize(), self.preview.contentsRect())
        fx, fy = (pos.x() - shown.x()) / shown.width(), (pos.y() - shown.y()) / shown.height()
        inside = [face for face in self.faces
                  if face.box[0] <= fx <= face.box[0] + face.box[2] and face.box[1] <= fy <= face.box[1] + face.box[3]]
        return min(inside, key=lambda face: face.box[2] * face.box[3], default=None)

    def tooltip_at(self, pos: QPoint) -> str:
        face = self.face_at(pos)
        return face_tooltip(face) if face is not None else ""

    def click(self, pos: QPoint) -> bool:
        """Open the popup of the face under ``pos``; False (nothing happens) outside every box."""
        face = self.face_at(pos)
        if face is None or self.runner is None:
            return False
        self.runner.run_task(self.service.person_names,
                             lambda names, error: error is None and self.popup.set_names(names), pool="interactive")
        self.popup.open_for(face, self.preview.mapToGlobal(pos))
        return True

    def name(self, face: PhotoFace, typed: str) -> None:
        """Give the face's person a name (``People.name_face``); an empty or unchanged name does nothing."""
        name = typed.strip()
        if name and name != (face.name or ""):
            self._store(lambda: self.service.name_face(face.id, name))

    def _store(self, work) -> None:
        self.runner.run_task(work, self._stored)

    def _stored(self, _, error) -> None:
        if error is not None:
            self.failed.emit(str(error))
        self.changed.emit()

    def eventFilter(self, watched, event) -> bool:  # noqa: N802 - Qt override
        kind = event.type()
        if kind == QEvent.ToolTip:
            text = self.tooltip_at(event.pos())
            QToolTip.showText(event.globalPos(), text, self.preview) if text else QToolTip.hideText()
            return bool(text)
        if kind == QEvent.MouseMove:
            over = self.face_at(event.position().toPoint()) is not None
            self.preview.setCursor(Qt.PointingHandCursor) if over else self.preview.unsetCursor()
        if kind == QEvent.MouseButtonPress and event.button() == Qt.LeftButton:
            return self.click(event.position().toPoint())
        return False


def refresh_people(window) -> None:
    """After a face was named or moved from the detail pane of a ``MainWindow``: the person filter's names
    and the listing (it may be one person's), and the People view when it is open."""
    window.refresh_status()
    window.searching.relist()
    view = getattr(window, "people_view", None)
    if view is not None and view.isVisible():
        view.refresh()
        if view.shown_person is not None:
            view.show_photos(view.shown_person, quiet=True)


def show_person(window, person_id: int) -> None:
    """The People view of a ``MainWindow``, showing the faces of ``person_id``."""
    open_people_view(window).show_photos(person_id)


def connect_face_naming(window) -> None:
    """Wire the detail pane's face boxes of a ``MainWindow`` to the rest of it."""
    boxes = window.detail.face_boxes
    boxes.changed.connect(lambda: refresh_people(window))
    boxes.failed.connect(lambda text: window.notify(f"The face could not be named: {text}", "error"))
    boxes.person_requested.connect(lambda person_id: show_person(window, person_id))
