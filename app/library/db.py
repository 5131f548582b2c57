"""The library database: SQLite through sqlite-utils, WAL mode, versioned stepwise migrations.

SQLite is the source of truth; the HNSW files next to it are caches rebuilt from the
``embeddings``/``segments``/``text_embeddings`` tables. Every thread gets its own connection
(``LibraryDB.conn``); writes that must land together go through ``LibraryDB.transaction()``,
an explicit ``BEGIN IMMEDIATE`` ... ``COMMIT`` (connections run in autocommit mode, so
nothing commits half a batch behind our back).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlite_utils

from app.library.pathtext import from_db, to_db

SCHEMA_VERSION = 8
# PRAGMA application_id of a cots library ("COTS"): another program's SQLite file is never written to.
APPLICATION_ID = 0x434F5453
# Libraries written before application_id existed are recognised by these tables.
LIBRARY_TABLES = {"folders", "media", "embeddings", "settings"}
SQLITE_HEADER = b"SQLite format 3\x00"


def _migrate_1(db: sqlite_utils.Database) -> None:
    """Base schema."""
    db["folders"].create({"id": int, "path": str, "added_at": float}, pk="id")
    db["folders"].create_index(["path"], unique=True)
    db["media"].create(
        {
            "id": int, "path": str, "folder_id": int, "name": str, "folder_names": str, "caption": str,
            "kind": str,  # image | video
            "size": int, "mtime_ns": int, "hash": str,
            "width": int, "height": int, "duration": float, "captured_at": float,
            "status": str,  # ok | error
            "error": str, "model_id": str, "indexed_at": float,
        },
        pk="id",
        foreign_keys=[("folder_id", "folders", "id")],
    )
    db["media"].create_index(["path"], unique=True)
    db["media"].create_index(["folder_id"])
    db["media"].create_index(["size"])
    db["embeddings"].create(
        {"media_id": int, "model_id": str, "vector": bytes, "gen": int}, pk=("media_id", "model_id"),
        foreign_keys=[("media_id", "media", "id")],
    )
    db["segments"].create(
        {"id": int, "media_id": int, "model_id": str, "start_s": float, "end_s": float, "vector": bytes,
         "gen": int},
        pk="id", foreign_keys=[("media_id", "media", "id")],
    )
    db["segments"].create_index(["media_id", "model_id"])
    db["texts"].create({"id": int, "text": str, "source": str, "media_id": int}, pk="id")
    db["texts"].create_index(["source", "media_id", "text"], unique=True)
    db["text_embeddings"].create(
        {"text_id": int, "model_id": str, "vector": bytes, "gen": int}, pk=("text_id", "model_id"),
        foreign_keys=[("text_id", "texts", "id")],
    )
    # ``gen``: the library generation that wrote the vector, so a saved index can catch up exactly.
    db["settings"].create({"key": str, "value": str}, pk="key")
    # File and folder names and captions, for the lexical half of hybrid search.
    db["media"].enable_fts(
        ["name", "folder_names", "caption"], fts_version="FTS5", create_triggers=True,
        tokenize="unicode61 remove_diacritics 2",
    )


def _migrate_2(db: sqlite_utils.Database) -> None:
    """Folders that could not be read during the last scan, and a hash index for move detection."""
    db["scan_errors"].create({"path": str, "error": str, "seen_at": float}, pk="path")
    db["media"].create_index(["hash"])


def _migrate_3(db: sqlite_utils.Database) -> None:
    """Mark the file as a cots library. (Paths that are not valid UTF-8 are stored as BLOBs of their
    bytes from this version on: SQLite columns take either, so existing rows need no change.)"""
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")


def _migrate_4(db: sqlite_utils.Database) -> None:
    """Signals (place, EXIF, text in photos, faces): one result row per (media, signal) with the
    signal's version (an older version is redone), its facts and boxes; the signals' words join the
    media row (``signal_text``) so that the one full-text index finds them with names and captions.
    Safe to run again on a file that has them (a library whose user_version was set back)."""
    db["signal_results"].create(
        {"media_id": int, "signal": str, "version": int,
         "status": str,  # ok | error
         "error": str, "text": str, "done_at": float},
        pk=("media_id", "signal"), foreign_keys=[("media_id", "media", "id")], if_not_exists=True,
    )
    db["signal_results"].create_index(["signal", "version"], if_not_exists=True)
    db["signal_facts"].create(
        {"media_id": int, "signal": str, "key": str, "value": bytes},  # BLOB: no affinity, so
        # 3 stays an integer, 0.25 a real and "Paris" text
        pk=("media_id", "signal", "key"), foreign_keys=[("media_id", "media", "id")], if_not_exists=True,
    )
    db["signal_facts"].create_index(["key", "value"], if_not_exists=True)
    db["signal_boxes"].create(
        {"id": int, "media_id": int, "signal": str, "x": float, "y": float, "w": float, "h": float,
         "score": float, "label": str},
        pk="id", foreign_keys=[("media_id", "media", "id")], if_not_exists=True,
    )
    db["signal_boxes"].create_index(["media_id", "signal"], if_not_exists=True)
    if "signal_text" not in db["media"].columns_dict:
        db["media"].add_column("signal_text", str)
    # The full-text index gains the column: rebuilt from the rows (names, folders and captions kept).
    db["media"].enable_fts(
        ["name", "folder_names", "caption", "signal_text"], fts_version="FTS5", create_triggers=True,
        tokenize="unicode61 remove_diacritics 2", replace=True,
    )

def _migrate_5(db: sqlite_utils.Database) -> None:
    """People: every face the faces signal found, with its 128-d identity vector (NULL for a face too small
    to recognise) and the person it belongs to; people with their name (``name_key``: the name case-folded,
    what search compares), hidden flag, the mean of their faces' vectors (``centroid``: what a new face is
    compared with) and, once merged into another, that person's id. ``source``: 'auto' (grouped by
    distance) or 'user' (placed by a person: never moved by the grouping again)."""
    db["people"].create(
        {"id": int, "name": str, "name_key": str, "hidden": int, "merged_into": int, "centroid": bytes,
         "created_at": float},
        pk="id", defaults={"hidden": 0}, if_not_exists=True,
    )
    db["people"].create_index(["name_key"], if_not_exists=True)
    db["faces"].create(
        {"id": int, "media_id": int, "x": float, "y": float, "w": float, "h": float, "score": float,
         "vector": bytes, "person_id": int, "source": str, "created_at": float},
        pk="id", foreign_keys=[("media_id", "media", "id"), ("person_id", "people", "id")], if_not_exists=True,
    )
    db["faces"].create_index(["media_id"], if_not_exists=True)
    db["faces"].create_index(["person_id"], if_not_exists=True)


def _migrate_6(db: sqlite_utils.Database) -> None:
    """People suggestions a person answered "No" to, so that they are not asked again: ``kind`` 'face' (is
    face ``a`` person ``b``?) or 'same' (are people ``a`` < ``b`` one person?)."""
    db["people_rejections"].create(
        {"kind": str, "a": int, "b": int, "created_at": float}, pk=("kind", "a", "b"), if_not_exists=True,
    )


def _migrate_7(db: sqlite_utils.Database) -> None:
    """Faces in videos: ``faces.at_s``, the second of the video frame a face was found on (NULL for a photo's
    face). Safe to run again on a file that has it."""
    if "at_s" not in db["faces"].columns_dict:
        db["faces"].add_column("at_s", float)


def _migrate_8(db: sqlite_utils.Database) -> None:
    """An index on each embedding table's (model, generation): whether anything was written since a saved
    vector index is then a lookup, not a scan of every vector (a cold `cots search` at 1M items read them all:
    ``storage.vectors.unchanged_since``, issue 33)."""
    for table in ("embeddings", "segments", "text_embeddings"):
        db[table].create_index(["model_id", "gen"], if_not_exists=True)


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _migrate_1, _migrate_2, _migrate_3, _migrate_4, _migrate_5, _migrate_6, _migrate_7, _migrate_8]
assert len(MIGRATIONS) == SCHEMA_VERSION


def vector_to_blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype=np.float32).tobytes()


def blob_to_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)



def id_chunks(ids: list, size: int = 500) -> Iterator[tuple[list, str]]:
    """``ids`` in chunks of at most ``size`` with their "?,?,?" placeholders (SQLite caps a statement's
    parameters)."""
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        yield chunk, ",".join("?" * len(chunk))


class LibraryDB:
    """One library's SQLite database; safe to share between threads (one connection per thread)."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path).expanduser().resolve()
        check_library_file(self.path, create)  # before any write: never touch another program's file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._watch: sqlite3.Connection | None = None  # kept for ``data_version``: its value is per connection
        self._watch_lock = threading.Lock()
        self.migrate()

    # -- connections ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        with self._lock:
            self._connections.append(conn)
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils view of this thread's connection."""
        wrapped = getattr(self._local, "db", None)
        if wrapped is None:
            wrapped = self._local.db = sqlite_utils.Database(self.conn)
        return wrapped

    def close(self) -> None:
        """Close every thread's connection (call once, when no thread uses the library any more)."""
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass  # created in a thread that already ended
            self._connections.clear()
            self._watch = None
        self._local = threading.local()

    def data_version(self) -> int:
        """SQLite's ``PRAGMA data_version`` on a connection kept for it alone: a different number means
        another connection committed since the last call (another process, or another thread of this one:
        a connection's own commits do not count, and this one never writes). One tiny read; WAL readers
        do not wait for writers."""
        with self._watch_lock:
            watch = self._watch
            if watch is None:
                watch = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
                with self._lock:
                    self._connections.append(watch)
                    self._watch = watch
            return watch.execute("PRAGMA data_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All statements inside commit together or not at all."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- schema ------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        """Apply the migrations this file has not seen yet, each in its own transaction."""
        version = self.schema_version
        if version > SCHEMA_VERSION:
            from app.library.errors import LibraryError

            raise LibraryError(
                f"{self.path} was written by a newer version of cots (schema {version} > {SCHEMA_VERSION}); "
                "upgrade cots or use another --db"
            )
        for step in range(version, SCHEMA_VERSION):
            with self.transaction() as conn:
                MIGRATIONS[step](self.db)
                conn.execute(f"PRAGMA user_version = {step + 1}")

    # -- settings ----------------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return from_db(row[0]) if row else default

    def set_setting(self, key: str, value: str | None, conn: sqlite3.Connection | None = None) -> None:
        conn = conn or self.conn
        if value is None:
            conn.execute("DELETE FROM settings WHERE key = ?", (key,))
        else:
            conn.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, ?)", (key, to_db(value)))

    def bump_generation(self, conn: sqlite3.Connection) -> int:
        """Count a change to the stored embeddings (inside the writing transaction)."""
        generation = int(self.get_setting("generation", "0")) + 1
        self.set_setting("generation", str(generation), conn)
        return generation

    @property
    def generation(self) -> int:
        return int(self.get_setting("generation", "0"))

    # -- folders -----------------------------------------------------------------------------
    def add_folder(self, path: Path) -> int:
        stored = to_db(path)
        with self.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO folders(path, added_at) VALUES (?, ?)", (stored, time.time()))
            return conn.execute("SELECT id FROM folders WHERE path = ?", (stored,)).fetchone()[0]

    def folders(self) -> list[tuple[int, Path]]:
        return [(r[0], Path(from_db(r[1]))) for r in self.conn.execute("SELECT id, path FROM folders ORDER BY path")]


def is_damaged(error: sqlite3.DatabaseError) -> bool:
    """True for a file SQLite cannot read as a database (corrupt pages, or not a database at all)."""
    name = getattr(error, "sqlite_errorname", "")
    text = str(error).lower()
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "malformed" in text or "not a database" in text


def database_error_message(db_path: str | Path | None, error: sqlite3.DatabaseError) -> str:
    """One line for a SQLite error met while running a command: what happened and the way out."""
    from app.library.paths import default_db_path
    from app.library.pathtext import display_text

    path = display_text(Path(db_path).expanduser() if db_path else default_db_path())
    option = f" --db {path}" if db_path else ""
    if is_damaged(error):
        return (f"the library database {path} is damaged ({error}): run `cots repair{option}` "
                "(it keeps the damaged file aside, salvages what it can read, and the next `cots index` "
                "re-embeds the rest)")
    if getattr(error, "sqlite_errorcode", None) == 8 or "readonly" in str(error).lower():  # SQLITE_READONLY
        return (f"the library database {path} is read-only ({error}): this command writes to it; make the file "
                "and its folder writable (or work on a copy)")
    if "locked" in str(error).lower() or "busy" in str(error).lower():
        return f"the library database {path} is busy ({error}): another program holds it; try again"
    return f"the library database {path} cannot be used ({error}); check the disk and try again"


def read_only_connection(path: Path) -> sqlite3.Connection:
    """A connection that cannot write to ``path``, for a file that may be another program's: a read-write
    connection that is the last to close a WAL-mode database checkpoints the WAL into it (and deletes the
    WAL), which changes the file even when not one statement wrote. ``mode=ro`` never checkpoints."""
    uri = "file:" + urllib.parse.quote(os.fsencode(path)) + "?mode=ro"
    return sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)


def check_library_file(path: Path, create: bool = True) -> None:
    """LibraryError unless ``path`` is a cots library, an empty file, or missing (and ``create``).

    Reads only: the file's header, ``application_id``, ``user_version`` and table names.
    """
    from app.library.errors import LibraryDamagedError, LibraryError
    from app.library.pathtext import display_text

    shown = display_text(path)
    if not path.exists():
        if create:
            return
        raise LibraryError(f"there is no library at {shown}: `cots index FOLDER --db {shown}` creates one")
    if not path.is_file():
        raise LibraryError(f"{shown} is not a library database (not a regular file): give --db a .db file")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise LibraryError(f"cannot read the library database {shown}: {error.strerror or error}") from error
    if not header:
        return  # an empty file becomes a new library
    if header != SQLITE_HEADER:
        raise LibraryError(f"{shown} is not a SQLite database, so not a cots library; nothing was changed: "
                           "give --db another file")
    try:
        conn = read_only_connection(path)
        try:
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        if is_damaged(error):
            raise LibraryDamagedError(database_error_message(path, error)) from error
        raise LibraryError(f"cannot open the library database {shown} ({error})") from error
    # no tables: a new file (version 0), or one from a newer cots that ``migrate`` refuses with its own line
    empty = not tables and (version == 0 or version > SCHEMA_VERSION)
    ours = application_id == APPLICATION_ID or (application_id == 0 and (LIBRARY_TABLES <= tables or empty))
    if not ours:
        listed = ", ".join(sorted(tables)[:6]) + (", ..." if len(tables) > 6 else "")
        raise LibraryError(f"{shown} is a SQLite database of another program (tables: {listed or 'none'}), not a "
                           "cots library; nothing was changed: give --db a new file or a cots library")
