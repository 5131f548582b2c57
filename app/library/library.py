"""``Library``: one photo/video library = its SQLite database plus the vector indexes beside it.

Shared by the CLI, the GUI and the tests. No model is needed to open a library, list folders,
read status or forget files; indexing and search take an ``Encoder`` (app.library.encoder).

Threading: a ``Library`` may be used from several threads at once. Each thread gets its own
SQLite connection; vector indexes are guarded by locks; run at most one ``Indexer`` at a time.
"""
from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from app.library.dates import clamp_seconds
from app.library.db import LibraryDB, blob_to_vector, database_error_message, is_damaged
from app.library.ef_background import EfChooser
from app.library.errors import LibraryDamagedError, LibraryError
from app.library.hnsw_file import HnswFileDamaged
from app.library.mapped_index import MappedIndex
from app.library.paths import default_db_path
from app.library.pathtext import display_text, from_db, to_db
from app.library.signals import fact_filter
from app.library.storage import media as media_store
from app.library.storage import signals as signal_store
from app.library.storage import vectors as vector_store
from app.library.vector_index import (
    HnswParams,
    VectorIndex,
    item_midpoints,
    needs_ef_choice,
)

log = logging.getLogger(__name__)

SPOT_CHECKS = 64  # vectors of a loaded index compared with SQLite


@dataclass
class MediaRecord:
    id: int
    path: str
    kind: str
    size: int | None
    mtime_ns: int | None
    hash: str | None
    width: int | None
    height: int | None
    duration: float | None
    captured_at: float | None
    status: str
    error: str | None
    model_id: str | None
    indexed_at: float | None
    caption: str | None
    folder_id: int | None

    @property
    def mtime(self) -> float | None:
        return self.mtime_ns / 1e9 if self.mtime_ns is not None else None

    @property
    def date(self) -> float | None:
        """Capture time from EXIF, else the file's modification time (in the library's date range, as the
        browse order and the date filters read it)."""
        date = self.captured_at if self.captured_at is not None else self.mtime
        return clamp_seconds(date) if date is not None else None


@dataclass
class Failure:
    path: str
    error: str


@dataclass
class LibraryStatus:
    db: str
    model: str | None
    model_source: str | None
    folders: list[str]
    indexed: int
    images: int
    videos: int
    segments: int
    pending: int  # readable files without an embedding from the current model
    failed: list[Failure] = field(default_factory=list)
    index: dict[str, dict] = field(default_factory=dict)  # kind -> {in_db, in_index, healthy}

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ForgetPlan:
    """What a ``forget`` removes: the watched folders that stop being watched and the media rows."""

    target: Path
    folders: list[Path]
    media_ids: list[int]
    folder_ids: list[int] = field(default_factory=list)

    def describe(self) -> str:
        items = f"{len(self.media_ids)} item{'s' if len(self.media_ids) != 1 else ''}"
        if self.folders:
            return (f"stop watching {', '.join(display_text(p) for p in self.folders)} and remove its {items} "
                    "from the library")
        return f"remove {items} under {display_text(self.target)} from the library"


def model_slug(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", model_id)[:80]


class Library:
    """A library of watched folders, its media rows, embeddings and vector indexes."""

    def __init__(self, db_path: str | Path | None = None, params: HnswParams | None = None, create: bool = True):
        """Open (or, with ``create``, start) a library; LibraryError for a file that is not one,
        LibraryDamagedError for one SQLite cannot read (``repair_library`` salvages it)."""
        path = Path(db_path).expanduser() if db_path else default_db_path()
        try:
            self.db = LibraryDB(path, create=create)
        except sqlite3.DatabaseError as error:
            if is_damaged(error):
                raise LibraryDamagedError(database_error_message(db_path, error)) from error
            raise LibraryError(f"cannot open the library database {display_text(path)} ({error})") from error
        self.path = self.db.path
        self.params = params or HnswParams()
        self._vectors: dict[tuple[str, str], VectorIndex] = {}
        self._synced: dict[tuple[str, str], int] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._vector_lock = threading.RLock()
        self._ef_chooser = EfChooser()  # ef_search measured on its own thread, outside _vector_lock
        self.rebuilt: dict[tuple[str, str], str] = {}  # (kind, model) -> why its saved index was rebuilt
        # a process answering a query or two (`cots search`): saved indexes are read in place (MappedIndex)
        self.read_in_place = False

    def close(self, finish_ef_choice: bool = True) -> None:
        """Save the vector indexes (after any ef choice still running, or stopping it when
        ``finish_ef_choice`` is False: the GUI's window closing) and close all connections."""
        self.save_vectors(choose_ef=finish_ef_choice)
        self._ef_chooser.wait(finish=finish_ef_choice)
        self.save_vectors(choose_ef=False)
        self.db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- model -------------------------------------------------------------------------------
    @property
    def model_id(self) -> str | None:
        """The model whose embeddings answer searches (None before the first indexing run)."""
        return self.db.get_setting("model_id")

    @property
    def model_source(self) -> str | None:
        """How to load that model again: a preset name or a checkpoint directory."""
        return self.db.get_setting("model_source")

    def set_model(self, model_id: str, source: str | None) -> None:
        with self.db.transaction() as conn:
            self.db.set_setting("model_id", model_id, conn)
            self.db.set_setting("model_source", source, conn)

    def drop_model(self, model_id: str) -> None:
        """Delete another model's embeddings (after a switch) and its index files."""
        with self.db.transaction() as conn:
            vector_store.delete_model_vectors(conn, model_id)
            self.db.bump_generation(conn)
        with self._vector_lock:
            for kind in vector_store.KIND_TABLES:
                self._vectors.pop((kind, model_id), None)
                self._synced.pop((kind, model_id), None)
                self._dirty.discard((kind, model_id))
                VectorIndex.remove_files(self.index_prefix(kind, model_id))

    # -- folders -----------------------------------------------------------------------------
    def add_folder(self, path: str | Path) -> Path:
        """Watch a folder; files forgotten under it (``forget``) come back at the next indexing run."""
        if not str(path).strip():  # Path("") is the current folder: never what an empty argument meant
            raise LibraryError("an empty path is not a folder: give the folder to watch")
        folder = Path(path).expanduser().resolve()
        if not folder.is_dir():
            raise LibraryError(f"{display_text(path)} is not a folder")
        self.db.add_folder(folder)
        with self.db.transaction() as conn:
            media_store.delete_forgotten_under(conn, folder)
        return folder

    def folders(self) -> list[Path]:
        return [p for _, p in self.db.folders()]

    def forget_plan(self, path: str | Path) -> ForgetPlan:
        """What ``forget(path)`` would remove; LibraryError unless ``path`` is a watched folder or inside one."""
        watched = self.db.folders()
        listing = ", ".join(display_text(p) for _, p in watched) or "none yet"
        if not str(path).strip():
            raise LibraryError(f"forget needs a folder or file of the library (watched folders: {listing})")
        candidates = {Path(path).expanduser().absolute(), Path(path).expanduser().resolve()}
        folders = [(fid, p) for fid, p in watched if p in candidates]
        if not folders and not any(p in c.parents for c in candidates for _, p in watched):
            raise LibraryError(f"{display_text(path)} is neither a watched folder nor inside one "
                               f"(watched folders: {listing})")
        ids: set[int] = set()
        for candidate in candidates:  # a watched folder goes with its forgotten rows too
            ids.update(media_store.media_ids_under(self.db.conn, candidate, forgotten_too=bool(folders)))
        return ForgetPlan(Path(path).expanduser().absolute(), [p for _, p in folders], sorted(ids),
                          [fid for fid, _ in folders])

    def forget(self, path: str | Path | ForgetPlan) -> int:
        """Remove a watched folder, or a folder or file inside one, from the library.

        Returns the number of media rows removed. A forgotten file inside a watched folder stays
        forgotten (its row is kept, marked ``forgotten``, without embeddings) until it changes or
        its folder is added again (``add_folder``, i.e. ``cots index FOLDER``).
        """
        plan = path if isinstance(path, ForgetPlan) else self.forget_plan(path)
        if plan.folder_ids:
            self.delete_media(plan.media_ids)
            with self.db.transaction() as conn:
                for fid in plan.folder_ids:
                    media_store.delete_folder(conn, fid)
        else:
            self.delete_media(plan.media_ids, keep_rows_as_forgotten=True)
        return len(plan.media_ids)

    # -- media rows --------------------------------------------------------------------------
    def media(self, ids) -> dict[int, MediaRecord]:
        rows = media_store.media_rows(self.db.conn, [int(i) for i in ids])
        return {row[0]: MediaRecord(row[0], from_db(row[1]), *row[2:]) for row in rows}

    def media_by_path(self, path: str | Path) -> MediaRecord | None:
        row = media_store.media_row_by_path(self.db.conn, to_db(Path(path).expanduser().absolute()))
        return MediaRecord(row[0], from_db(row[1]), *row[2:]) if row else None

    def embedding(self, media_id: int, model_id: str | None = None) -> np.ndarray | None:
        return vector_store.embedding(self.db.conn, media_id, model_id or self.model_id)

    def segments(self, media_id: int, model_id: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start seconds, end seconds, vectors) of a video's segments."""
        spans = vector_store.segment_spans(self.db.conn, [media_id], model_id or self.model_id)
        return spans.get(media_id, (np.zeros(0), np.zeros(0), np.zeros((0, 0), np.float32)))

    def delete_media(self, ids, keep_rows_as_forgotten: bool = False) -> None:
        """Remove rows' embeddings from SQLite and every vector index (and the rows themselves)."""
        ids = [int(i) for i in ids]
        if not ids:
            return
        with self.db.transaction() as conn:
            removed_segments, removed_texts = media_store.delete_media_data(conn, ids)
            media_store.remove_media_rows(conn, ids, keep_rows_as_forgotten)
            generation = self.db.bump_generation(conn)
        self.apply(generation, remove={"media": ids, "segment": removed_segments, "text": removed_texts})

    # -- vector indexes ----------------------------------------------------------------------
    def index_prefix(self, kind: str, model_id: str) -> Path:
        return self.path.with_name(f"{self.path.stem}.{kind}.{model_slug(model_id)}")

    def vectors(self, kind: str, model_id: str | None = None, dim: int | None = None) -> VectorIndex:
        """The index of one embedding kind, loaded from disk and brought in line with SQLite.

        Missing, unreadable or inconsistent files are rebuilt from the stored embeddings; an index
        that disagrees with the database (after a crash, or another process indexing) is repaired
        by adding and removing the differing rows.
        """
        model_id = model_id or self.model_id
        if model_id is None:
            return VectorIndex(dim or 1, self.params)
        key = (kind, model_id)
        with self._vector_lock:
            generation = self.db.generation
            index = self._vectors.get(key)
            if index is not None and self._synced.get(key) == generation:
                return index
            since = self._synced.get(key)
            rows_dim = self._stored_dim(kind, model_id) or dim
            if index is None and self.read_in_place and rows_dim:
                mapped = self._mapped_index(kind, model_id, rows_dim)
                if mapped is not None:
                    self._vectors[key], self._synced[key] = mapped, generation
                    return mapped
            if rows_dim is None and (index is None or isinstance(index, MappedIndex)):
                # nothing stored and no dimension known (a query before the first indexing, or before the first
                # video): an empty index, not kept, else the vectors indexed next would meet a 1-d index
                return VectorIndex(1, self.params)
            if index is None or isinstance(index, MappedIndex):  # a mapped one: the library changed since
                index, since = self._saved_index(kind, model_id, rows_dim, generation)
            changed = self._repair(kind, model_id, index, since)
            self._vectors[key] = index
            self._synced[key] = generation
            if changed:
                self._dirty.add(key)
            return index

    def _saved_index(self, kind: str, model_id: str, rows_dim: int | None,
                     generation: int) -> tuple[VectorIndex, int | None]:
        """(the saved index, the generation it holds) when its files are sound and agree with the database,
        else (a new empty index, None): the caller's repair then fills it from SQLite."""
        try:
            loaded = VectorIndex.load(self.index_prefix(kind, model_id), rows_dim or 0, self.params) \
                if rows_dim else None
        except HnswFileDamaged as error:  # said once: the rebuilt index is saved at close
            log.warning("the saved %s index is damaged (%s); rebuilding it from the library database",
                        kind, display_text(str(error)))
            self.rebuilt[(kind, model_id)] = f"the saved index file was damaged ({error}); rebuilt from the database"
            self._dirty.add((kind, model_id))
            loaded = None
        saved_gen = loaded[1].get("generation") if loaded else None
        if loaded and loaded[1].get("model_id") == model_id and isinstance(saved_gen, int) and saved_gen <= generation:
            if self._agrees_with_database(kind, model_id, loaded[0], saved_gen):
                return loaded[0], saved_gen
            log.info("the saved %s index disagrees with the database: rebuilding it", kind)
            self.rebuilt[(kind, model_id)] = "the saved index file disagreed with the database; rebuilt from it"
            self._dirty.add((kind, model_id))
        return VectorIndex(rows_dim or 1, self.params), None

    def _mapped_index(self, kind: str, model_id: str, dim: int) -> MappedIndex | None:
        """The saved index read in place (``MappedIndex``) when it holds exactly the stored vectors: its files
        agree, nothing was written since its save, and a spot check matches SQLite. None otherwise."""
        loaded = MappedIndex.load(self.index_prefix(kind, model_id), dim, self.params)
        if loaded is None:
            return None
        index, meta = loaded
        saved_gen = meta.get("generation")
        if meta.get("model_id") != model_id or not isinstance(saved_gen, int) \
                or not vector_store.unchanged_since(self.db.conn, kind, model_id, saved_gen, len(index)):
            return None
        return index if self._agrees_with_database(kind, model_id, index, saved_gen) else None

    def _agrees_with_database(self, kind: str, model_id: str, index: VectorIndex, saved_gen: int,
                              sample: int = SPOT_CHECKS) -> bool:
        """Spot-check a loaded index: a random sample of its vectors must equal the stored embeddings.

        The file's own checks (sizes, ids) pass for a file damaged in place, e.g. every vector's sign
        flipped; a few dozen rows read by id catch that for the cost of one small query.
        """
        ids = index.ids
        if len(ids) == 0:
            return True
        ids = np.random.default_rng().choice(ids, min(sample, len(ids)), replace=False)
        rows = vector_store.stored_vectors(self.db.conn, kind, model_id, ids.tolist(), max_gen=saved_gen)
        if not rows:
            return True
        stored = np.stack([blob_to_vector(r[1]) for r in rows])
        if stored.shape[1] != index.dim:
            return False
        return bool(np.allclose(index.get([r[0] for r in rows]), stored, atol=1e-4))

    def _stored_dim(self, kind: str, model_id: str) -> int | None:
        return vector_store.stored_dim(self.db.conn, kind, model_id)

    def _repair(self, kind: str, model_id: str, index: VectorIndex, since: int | None) -> bool:
        """Make ``index`` hold exactly the stored vectors: add missing rows, drop deleted ones and
        re-add rows written after generation ``since`` (None: the index is new, add everything)."""
        db_ids = vector_store.stored_ids(self.db.conn, kind, model_id)
        live = set(index.ids.tolist())
        extra = live - db_ids
        if extra:
            index.remove(list(extra))
        missing = db_ids - live
        started = time.perf_counter()
        added = 0
        for rows in vector_store.stored_vector_batches(self.db.conn, kind, model_id, None if not live else since):
            index.add([r[0] for r in rows], np.stack([blob_to_vector(r[1]) for r in rows]), num_threads=-1)
            added += len(rows)
            missing.difference_update(r[0] for r in rows)
        if missing:  # rows older than ``since`` that the saved index lacks (it was saved mid-crash)
            missing_list = sorted(missing)
            for start in range(0, len(missing_list), 5000):
                rows = vector_store.stored_vectors(self.db.conn, kind, model_id, missing_list[start:start + 5000])
                if rows:
                    index.add([r[0] for r in rows], np.stack([blob_to_vector(r[1]) for r in rows]),
                              num_threads=-1)
                    added += len(rows)
        if added or extra:
            log.info("%s index: %d rows (re)added, %d removed from SQLite in %.1fs", kind, added, len(extra),
                     time.perf_counter() - started)
        return bool(added or extra)

    def apply(self, generation: int, model_id: str | None = None, add: dict | None = None,
              remove: dict | None = None) -> None:
        """Mirror a committed write in the in-memory indexes.

        ``add``: kind -> (ids, vectors); ``remove``: kind -> ids. When this write is the only change
        since the last sync, the indexes count as in sync; otherwise the next ``vectors`` call repairs.
        """
        with self._vector_lock:
            for key in [key for key, index in self._vectors.items() if isinstance(index, MappedIndex)]:
                del self._vectors[key]  # read-only: the next use loads the index, with this write
                self._synced.pop(key, None)
            for key, index in self._vectors.items():
                kind, key_model = key
                if remove and remove.get(kind):
                    index.remove(remove[kind])  # ids are unique per table: other models' are no-ops
                    self._dirty.add(key)
                if add and kind in add and key_model == model_id:
                    ids, vecs = add[kind]
                    if len(ids):
                        index.add(ids, vecs)
                        self._dirty.add(key)
                if self._synced.get(key) == generation - 1:
                    self._synced[key] = generation

    def save_vectors(self, choose_ef: bool = True) -> None:
        """Write the changed indexes next to the database (cheap to skip: they are caches). An index that
        needs its ef_search chosen gets it on a background thread (searches and additions go on); the
        choice is written to the saved index when it lands (``close`` waits for it)."""
        with self._vector_lock:
            for key in list(self._dirty):
                kind, model_id = key
                index = self._vectors.get(key)
                if index is None:
                    continue
                if choose_ef and needs_ef_choice(index) and not self._ef_chooser.busy(key):
                    self._start_ef_choice(kind, model_id, index)
                try:
                    index.save(self.index_prefix(kind, model_id),
                               {"model_id": model_id, "kind": kind, "generation": self._synced.get(key)})
                    self._dirty.discard(key)
                except OSError as error:
                    log.warning("could not save the %s index: %s", kind, error)

    def _search_settings(self, kind: str, model_id: str) -> dict:
        """How the index is searched: exactly (small), or HNSW with its ef_search (and the recall measured)."""
        index = self.vectors(kind, model_id)
        if len(index) < index.params.exact_below:
            return {"search": "exact"}
        choice = index.ef_choice
        return {"search": "hnsw", "ef_search": index.ef_search, "recall_at_10": choice.recall if choice else None,
                "M": index.params.M, "ef_construction": index.params.ef_construction}

    def _start_ef_choice(self, kind: str, model_id: str, index: VectorIndex, sample: int = 200) -> None:
        """Choose the index's ef_search from this library's data, in the background. Queries (gathered now,
        under the lock): a sample of its own items, midpoints of item pairs, and the other side's embeddings
        (texts for media and segments)."""
        key = (kind, model_id)
        rng = np.random.default_rng(len(index))
        own = rng.choice(index.ids, min(sample, len(index)), replace=False)
        own_vectors = index.get(own)
        query_sets = [(own_vectors, own), (item_midpoints(index.sample(2 * sample, seed=len(index)), sample), None)]
        other = self.vectors("media" if kind == "text" else "text", model_id)
        if len(other) and other.dim == index.dim:
            query_sets.append((other.sample(sample, seed=len(index)), None))

        def chosen(choice) -> None:
            with self._vector_lock:
                if self._vectors.get(key) is not index:
                    return  # dropped or rebuilt meanwhile
                index.ef_choice = choice
                if key in self._dirty:
                    return  # changed since it was saved: the next save writes the choice too
                try:
                    index.save_ef_choice(self.index_prefix(kind, model_id))
                except OSError as error:
                    log.warning("could not save the %s index's ef choice: %s", kind, error)
                    self._dirty.add(key)

        self._ef_chooser.submit(key, index, query_sets, chosen)

    # -- status ------------------------------------------------------------------------------
    def data_version(self) -> int:
        """A number that changes when the database was changed by another process (or another thread of this
        one) since the last call: a cheap way to notice ``cots index``, ``forget`` or ``people`` run elsewhere."""
        return self.db.data_version()

    def failures(self) -> list[Failure]:
        return [Failure(path, error) for path, error in media_store.failed_files(self.db.conn)]

    def status(self, check_index: bool = True) -> LibraryStatus:
        conn = self.db.conn
        model_id = self.model_id
        counts = vector_store.embedded_by_kind(conn, model_id)
        ok = media_store.readable_count(conn)
        segments = vector_store.stored_count(conn, "segment", model_id)
        indexed = sum(counts.values())
        health: dict[str, dict] = {}
        if check_index and model_id:
            for kind in vector_store.KIND_TABLES:
                in_db = vector_store.stored_count(conn, kind, model_id)
                in_index = len(self.vectors(kind, model_id))
                health[kind] = {"in_db": in_db, "in_index": in_index, "healthy": in_db == in_index,
                                "rebuilt": self.rebuilt.get((kind, model_id)),
                                **self._search_settings(kind, model_id)}
        return LibraryStatus(
            db=str(self.path), model=model_id, model_source=self.model_source,
            folders=[str(p) for p in self.folders()], indexed=indexed,
            images=counts.get("image", 0), videos=counts.get("video", 0), segments=segments,
            pending=ok - indexed, failed=self.failures(), index=health,
        )

    # -- signals -----------------------------------------------------------------------------
    def choice_groups(self, filter_name: str) -> list[tuple[tuple[str, ...], int]]:
        """(values of the filter's ``choice_keys``, photos) of the readable photos, most photos first."""
        return signal_store.fact_groups(self.db.conn, fact_filter(filter_name).choice_keys)

    def filter_choices(self, filter_name: str) -> list[tuple[str, int]]:
        """A declared signal filter's choices with their photo counts ("Paris, France", 12), as it lists them."""
        declared = fact_filter(filter_name)
        return declared.choice_list(signal_store.fact_groups(self.db.conn, declared.choice_keys)) \
            if declared.choice_keys else []

    def signal_details(self, media_id: int) -> tuple[dict, list[tuple], dict[str, str]]:
        """One row's facts, boxes (signal, x, y, w, h, score, label) and signal texts, for a detail view."""
        return signal_store.media_signal_details(self.db.conn, media_id)

    def signal_failures(self, limit: int = 50) -> list[tuple[str, str, str]]:
        """(signal, path, error) of files a signal could not read."""
        return signal_store.signal_failures(self.db.conn, limit)
