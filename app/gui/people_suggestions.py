"""The "Suggestions" strip at the top of the People view: a card per question ("Is this Grace?", "Same
person?") with the two faces it is about and Yes / No buttons. Nothing changes until a button is pressed;
a "No" is remembered by the library (``app.library.people.People.reject``), so the card does not come back.

The questions and the face crops are made on a worker (``TaskRunner``); the strip only shows them.
"""
from __future__ import annotations

from PIL.ImageQt import ImageQt
from PySide6.QtCore import Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.gui.tasks import TaskRunner
from app.library.people import People, face_crop

CARDS = 6  # questions shown at once: answering one brings the next
FACE = 64


class SuggestionStrip(QWidget):
    """Suggestions with Yes / No. ``answered(error)`` follows an answer stored (error None) or refused."""

    answered = Signal(object)

    def __init__(self, people: People, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.people, self.runner = people, runner
        self.row = QHBoxLayout(self)
        self.row.setContentsMargins(0, 0, 0, 0)
        self.cards: list[tuple[object, QPushButton, QPushButton]] = []  # (suggestion, yes, no) as shown
        self.setVisible(False)

    def refresh(self) -> None:
        self.runner.run_task(self._gather, self._shown)

    def _gather(self) -> list[tuple[object, list]]:
        """(suggestion, face images) for the questions to show; runs on a worker."""
        shown = []
        for suggestion in self.people.suggestions(CARDS):
            if suggestion.kind == "face":
                faces = [suggestion.subject, self.people.get(suggestion.person_id).face_id]
            else:
                faces = [self.people.get(suggestion.subject).face_id, self.people.get(suggestion.person_id).face_id]
            shown.append((suggestion, [_crop(self.people, face_id) for face_id in faces]))
        return shown

    def _shown(self, found, error) -> None:
        while self.row.count():
            widget = self.row.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.cards = []
        found = [] if error is not None else found
        if found:
            self.row.addWidget(QLabel("Suggestions:"))
        for suggestion, images in found:
            self.row.addWidget(self._card(suggestion, images))
        self.row.addStretch(1)
        self.setVisible(bool(found))

    def _card(self, suggestion, images: list) -> QFrame:
        card = QFrame()
        card.setFrameShape(QFrame.StyledPanel)
        faces = QHBoxLayout()
        for image in images:
            label = QLabel()
            if image is not None:
                label.setPixmap(QPixmap.fromImage(image))
            faces.addWidget(label)
        yes, no = QPushButton("Yes"), QPushButton("No")
        yes.clicked.connect(lambda: self.answer(suggestion, True))
        no.clicked.connect(lambda: self.answer(suggestion, False))
        buttons = QHBoxLayout()
        buttons.addWidget(yes)
        buttons.addWidget(no)
        layout = QVBoxLayout(card)
        layout.addLayout(faces)
        layout.addWidget(QLabel(suggestion.question()))
        layout.addLayout(buttons)
        self.cards.append((suggestion, yes, no))
        return card

    def answer(self, suggestion, yes: bool) -> None:
        for _, *buttons in self.cards:  # one answer at a time: the list is made again after it
            for button in buttons:
                button.setEnabled(False)
        self.runner.run_task(lambda: self.people.accept(suggestion) if yes else self.people.reject(suggestion),
                             lambda _, error: self.answered.emit(error))


def _crop(people: People, face_id: int | None):
    """A face's thumbnail, or None when there is none or its photo cannot be read now."""
    if face_id is None:
        return None
    face = people.face(face_id)
    try:
        return ImageQt(face_crop(face.path, face.box, FACE, at_s=face.at_s).convert("RGBA")).copy()
    except Exception:  # noqa: BLE001 - a photo moved or unreadable meanwhile (MediaError, OSError): no face shown
        return None
