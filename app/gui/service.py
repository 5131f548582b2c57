"""What the window needs from the library, as plain Python (no Qt).

The window speaks the library's own types (``search.Hit`` and ``Filters``, ``indexer.IndexProgress`` and
``IndexControl``); only the summaries made for its panels are declared here.

Every ``LibraryService`` method may block (model, SQLite, files), so the window only calls them
through ``TaskRunner.run_task``. ``EngineService`` implements it over ``app.library``; tests may pass
any object with the same methods.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from PIL import Image

from app.library.indexer import IndexControl
from app.library.people import Person, PhotoFace
from app.library.search import Filters, Hit


@dataclass
class Counts:
    images: int = 0
    videos: int = 0
    failed: int = 0
    pending: int = 0
    model: str | None = None


@dataclass
class IndexSummary:
    indexed: int = 0
    failed: int = 0
    removed: int = 0
    cancelled: bool = False
    errors: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SignalDetails:
    """What the signals found in one item, beyond ``Hit.facts``: their texts (recognised text, place
    names) and boxes (signal, x, y, w, h, score, label) in fractions of the image; ``faces``: the drawn boxes
    of the signals that group faces into people, each as the face it is (its id, box and person)."""

    texts: dict[str, str] = field(default_factory=dict)
    boxes: list[tuple] = field(default_factory=list)
    faces: list[PhotoFace] = field(default_factory=list)


@dataclass
class SignalChoices:
    """The search bar's signal filters and the library's signal settings."""

    # declared filter name -> its choices with photo counts: {"place": [("Paris, France", 12), ...], ...}
    filters: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    second_pass: bool = True  # the signals a person may turn off are read (the slower second pass)
    people: list[tuple[str, int]] = field(default_factory=list)  # named people shown in the list, with photos


ImageInput = str | Path | Image.Image


class LibraryService(Protocol):
    def load_model(self) -> str: ...
    def pending_switch(self) -> str | None: ...
    def folders(self) -> list[str]: ...
    def add_folder(self, path: str) -> str: ...
    def remove_folder(self, path: str) -> int: ...
    def counts(self) -> Counts: ...
    def library_version(self) -> int: ...  # changes when another process (or thread) changed the library
    def follow_library_model(self) -> str | None: ...  # the model source another process switched to, loaded
    def failures(self) -> list[tuple[str, str]]: ...
    def index(self, on_progress, control: IndexControl) -> IndexSummary: ...
    def search(self, query: str, filters: Filters, k: int = 200) -> list[Hit]: ...
    def similar(self, image: ImageInput, filters: Filters, k: int = 60) -> list[Hit]: ...
    def browse(self, filters: Filters, offset: int, limit: int) -> list[Hit]: ...  # the library, newest first
    def periods(self, filters: Filters, per: str) -> list[tuple[str | None, int]]: ...  # (period, items), same order
    def describe(self, image: ImageInput, k: int = 12) -> list[tuple[str, float]]: ...
    def texts_for(self, hit: Hit, k: int = 5) -> list[tuple[str, float]]: ...
    def signal_details(self, hit: Hit) -> SignalDetails: ...
    def signal_choices(self) -> SignalChoices: ...
    def set_second_pass(self, enabled: bool) -> None: ...
    def person_names(self) -> list[str]: ...  # the named people shown in People, for completing a name
    def name_face(self, face_id: int, name: str) -> Person: ...  # app.library.people.People.name_face
    def move_face(self, face_id: int, to: int | str) -> Person: ...  # to a person id, or "new": one of its own
    def switch_model(self, source: str, on_progress, control: IndexControl) -> str: ...
    def close(self) -> None: ...
