"""``EngineService``: the GUI's ``LibraryService`` over the persistent engine in ``app.library``
(SQLite + HNSW, hybrid search, calibrated cut-off, background indexer, model switch)."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from app.gui.service import Counts, ImageInput, IndexSummary, SignalChoices, SignalDetails
from app.library import Library
from app.library.errors import LibraryError
from app.library.indexer import IndexControl, Indexer, IndexOptions
from app.library.paths import DEFAULT_MODEL
from app.library.people import People, Person, match_face_boxes
from app.library.query_encoder import load_query_encoder
from app.library.search import DEFAULT_MIN_RELEVANCE, Filters, Hit, SearchService, browse, periods
from app.library.signal_runner import disabled_signals, set_signal_enabled
from app.library.signals import face_signals, fact_filters, toggles

if TYPE_CHECKING:
    from app.library.encoder import Encoder


class EngineService:
    """One library database; ``model`` is a preset name or checkpoint folder, ``None`` = the library's own."""

    def __init__(self, db_path: str | Path | None = None, model: str | None = None, device: str | None = None,
                 encoder: Encoder | None = None, options: IndexOptions | None = None,
                 min_relevance: float = DEFAULT_MIN_RELEVANCE, new_library_model: str | None = None):
        """``model``: asked for explicitly (``cots gui --model``): a library indexed with another is re-embedded.
        ``new_library_model``: the model a library that has none yet starts with (the window's remembered
        choice); a library indexed with another model keeps its own."""
        self.library = Library(db_path)
        self.requested, self.device, self.options = model, device, options
        self.new_library_model = new_library_model
        self.min_relevance = min_relevance
        self.encoder = encoder
        self.engine: SearchService | None = None
        self._lock = threading.Lock()
        self._pending_switch: str | None = None
        self._followed: str | None = None  # the last library model that follow_library_model tried to load

    # -- model ---------------------------------------------------------------------------------
    def load_model(self) -> str:
        """Load the model that indexed this library (or the requested one for a new library)."""
        indexed_with = self.library.model_source
        self._pending_switch = self.requested if (
            self.requested and indexed_with
            and Path(self.requested).expanduser() != Path(indexed_with).expanduser()) else None
        if self.encoder is None:
            source = indexed_with or self.requested or self.new_library_model or DEFAULT_MODEL
            # text queries are answered before the image tower is loaded (first indexing or image query), from
            # the ONNX text graph of the library's model when it has one (no torch at all)
            self.encoder = load_query_encoder(source, self.library.model_id if source == indexed_with else None,
                                              self.device)
        self.engine = SearchService(self.library, self.encoder, self.min_relevance)
        return self.encoder.model_id

    def pending_switch(self) -> str | None:
        """The model asked for (``cots gui --model``) when the library was indexed with another one;
        decided by ``load_model`` (on a worker thread), so this reads no database."""
        return self._pending_switch

    def follow_library_model(self) -> str | None:
        """Load the library's model when another process switched it (``cots index --model RUN`` finished):
        its source (a name or folder), or None when the loaded model still is the library's (or none is loaded yet). Each new model
        is tried once: LibraryError when it cannot be loaded, and searches keep failing with that message."""
        library_model = self.library.model_id
        with self._lock:
            loaded = self.encoder.model_id if self.encoder is not None and self.engine is not None else None
        if loaded is None or not library_model or library_model in (loaded, self._followed):
            return None
        self._followed = library_model
        source = self.library.model_source
        if not source:
            raise LibraryError(f"the library was switched to the model {library_model} by another program, "
                               "which did not say where that model is")
        self._use_encoder(load_query_encoder(source, library_model, self.device))
        return source

    def _search(self) -> SearchService:
        with self._lock:
            if self.engine is None:
                raise LibraryError("the model is still loading")
            return self.engine

    # -- folders and status --------------------------------------------------------------------
    def folders(self) -> list[str]:
        return [str(p) for p in self.library.folders()]

    def add_folder(self, path: str) -> str:
        return str(self.library.add_folder(path))

    def remove_folder(self, path: str) -> int:
        return self.library.forget(path)

    def counts(self) -> Counts:
        status = self.library.status(check_index=False)
        return Counts(status.images, status.videos, len(status.failed), status.pending, status.model)

    def library_version(self) -> int:
        return self.library.data_version()

    def failures(self) -> list[tuple[str, str]]:
        return [(f.path, f.error or "") for f in self.library.failures()]

    # -- indexing ------------------------------------------------------------------------------
    def index(self, on_progress, control: IndexControl, encoder: Encoder | None = None) -> IndexSummary:
        encoder = encoder or self.encoder
        if encoder is None:
            raise LibraryError("the model is still loading")
        indexer = Indexer(self.library, encoder, self.options, progress=on_progress,
                          cancel_event=control.cancel_event, pause_event=control.pause_event,
                          on_model_switch=lambda _: self._use_encoder(encoder))
        report = indexer.run()
        return IndexSummary(report.added + report.updated + report.moved, report.failed, report.removed,
                            report.cancelled, list(report.errors))

    def switch_model(self, source: str, on_progress, control: IndexControl) -> str:
        """Re-embed with ``source``; the current model answers searches until every item is re-embedded
        (the indexer switches the library's model at the end of a complete run)."""
        from app.library.encoder import Encoder  # here: the window's first paint imports no torch

        new = Encoder.load(source, self.device)
        self.index(on_progress, control, encoder=new)  # swaps the search engine the moment the library switches
        return self.library.model_id or new.model_id

    def _use_encoder(self, encoder: Encoder) -> None:
        with self._lock:
            self.encoder = encoder
            self.engine = SearchService(self.library, encoder, self.min_relevance)

    # -- search --------------------------------------------------------------------------------
    def search(self, query: str, filters: Filters, k: int = 200) -> list[Hit]:
        # Ask for everything above -inf; hits the calibrated cut-off would drop come flagged ``weak``, so
        # the "show weaker matches" toggle needs no new query.
        return self._search().text(query, k, filters, min_relevance=float("-inf"))

    def similar(self, image: ImageInput, filters: Filters, k: int = 60) -> list[Hit]:
        return self._search().similar(image, k, filters)

    def describe(self, image: ImageInput, k: int = 12) -> list[tuple[str, float]]:
        return [(t.text, float(t.score)) for t in self._search().describe(image, k)]

    def texts_for(self, hit: Hit, k: int = 5) -> list[tuple[str, float]]:
        # a video hit is described by the moment that matched, not by the mean of all its scenes
        moment = hit.timestamp if hit.kind == "video" else None
        return [(t.text, float(t.score)) for t in self._search().describe(hit.id, k=k, at=moment)]

    # -- browsing (no model needed) ---------------------------------------------------------------
    def browse(self, filters: Filters, offset: int, limit: int) -> list[Hit]:
        return browse(self.library, filters, offset, limit)

    def periods(self, filters: Filters, per: str) -> list[tuple[str | None, int]]:
        return periods(self.library, filters, per)

    # -- signals -------------------------------------------------------------------------------
    def signal_details(self, hit: Hit) -> SignalDetails:
        _, boxes, texts = self.library.signal_details(hit.id)
        face_boxes = [tuple(box[1:5]) for box in boxes if box[0] in face_signals()]
        faces = match_face_boxes(face_boxes, People(self.library).photo_faces(hit.id)) if face_boxes else []
        return SignalDetails(texts, boxes, [face for face in faces if face is not None])

    def signal_choices(self) -> SignalChoices:
        choices = {f.name: self.library.filter_choices(f.name) for f in fact_filters() if f.choice_keys}
        people = [(person.name, person.photos) for person in People(self.library).list(min_photos=1) if person.name]
        # the GUI's one checkbox turns every signal that may be turned off on or off together
        return SignalChoices(choices, not set(toggles()) <= disabled_signals(self.library), people)

    def set_second_pass(self, enabled: bool) -> None:
        for name in toggles():
            set_signal_enabled(self.library, name, enabled)

    # -- people --------------------------------------------------------------------------------
    def person_names(self) -> list[str]:
        return [person.name for person in People(self.library).list(min_photos=1) if person.name]

    def name_face(self, face_id: int, name: str) -> Person:
        return People(self.library).name_face(face_id, name)

    def move_face(self, face_id: int, to: int | str) -> Person:
        return People(self.library).move(face_id, to)

    def close(self) -> None:
        # the window is closing: a background ef measurement (minutes at 1M items) is stopped, not awaited
        self.library.close(finish_ef_choice=False)
