"""``cots repair``: check a library's SQLite file and, when damaged, salvage what can be read.

The damaged file is never changed: it is moved aside as ``NAME.damaged-<timestamp>`` (with its WAL),
and a fresh library is written in its place from the rows that can still be read, through
``sqlite3 .recover`` when the sqlite3 program is installed, else row by row through Python. Rows
whose embedding was lost are kept, so the next ``cots index`` re-embeds exactly those; the vector
index files are deleted and rebuilt from SQLite on the next load.

Unlike the rest of the program, this module runs its own SQL rather than storage's functions: it reads a
damaged file table by table and row by row (stepping over unreadable pages), copying whatever columns each
table has, which storage's statements over a sound, current library cannot do.
"""
from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.library.db import LibraryDB, check_library_file
from app.library.errors import LibraryDamagedError, LibraryError
from app.library.lock import indexing_lock
from app.library.pathtext import display_text
from app.library.salvage_copy import make_working_copy
from app.library.storage.vectors import KIND_TABLES

log = logging.getLogger(__name__)

# Parents before children, so that what survives keeps its links.
TABLES = ("settings", "folders", "scan_errors", "media", "embeddings", "segments", "texts", "text_embeddings",
          "signal_results", "signal_facts", "signal_boxes", "people", "faces", "people_rejections")
RECOVER_TIMEOUT_S = 600
_MAX_SKIPS = 48  # rowid jumps past an unreadable page, doubling each time (2**48: past any real rowid)


@dataclass
class RepairReport:
    path: Path
    damaged: bool
    problems: list[str] = field(default_factory=list)  # what the integrity check said (first lines)
    kept_as: Path | None = None  # where the damaged file now is
    method: str | None = None  # "sqlite3 .recover" | "row by row"
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows salvaged
    to_reembed: int = 0  # readable media rows without an embedding: the next `cots index` redoes them
    without_folder: int = 0  # media rows whose watched folder was lost: `cots index FOLDER` adds it back
    notes: list[str] = field(default_factory=list)  # what the working copy needed (cut short, schema put back)
    unreadable: list[str] = field(default_factory=list)  # tables with rows that could not be read
    items_lost: int = 0  # media rows the damaged file still refers to (embeddings, captions...) not salvaged
    items_lost_exact: bool = True  # False when part of the media table was unreadable: more may be lost


def integrity_problems(path: Path) -> list[str]:
    """SQLite's integrity check: an empty list when the file is sound."""
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check(20)")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        return [str(error)]
    return [] if rows == ["ok"] else rows


def repair_library(path: str | Path) -> RepairReport:
    """Check the library at ``path``; salvage it into a fresh file when SQLite reports damage."""
    path = Path(path).expanduser().resolve()
    try:
        check_library_file(path, create=False)
    except LibraryDamagedError:
        pass  # what repair is for; another program's file or a missing one still stops here
    with indexing_lock(path):
        problems = integrity_problems(path)
        report = RepairReport(path, damaged=bool(problems), problems=problems[:5])
        if problems:
            _salvage(path, report)
        _remove_vector_indexes(path)
    return report


def _salvage(path: Path, report: RepairReport) -> None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fresh = path.with_name(f"{path.name}.repairing-{stamp}")
    recovered = path.with_name(f"{path.name}.recovered-{stamp}")
    work = path.with_name(f"{path.name}.reading-{stamp}")  # the damaged file itself is never written
    try:
        LibraryDB(fresh).close()  # the current schema, empty
        report.notes = make_working_copy(path, work, fresh)
        source = work
        if _recover_with_sqlite3(work, recovered):
            source, report.method = recovered, "sqlite3 .recover"
        else:
            report.method = "row by row"
        unreadable: set[str] = set()
        report.rows = _copy_rows(source, fresh, unreadable)
        report.unreadable = [table for table in TABLES if table in unreadable]
        report.items_lost = len(_referenced_media(work) - _media_ids(fresh))
        report.items_lost_exact = "media" not in unreadable and report.method == "row by row"
        if integrity_problems(fresh):
            raise LibraryError(f"the salvaged copy of {display_text(path)} is not sound either; the damaged file "
                               "is unchanged: restore a backup, or delete it and run `cots index FOLDER`")
        report.kept_as = path.with_name(f"{path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.replace(f"{path}{suffix}", f"{report.kept_as}{suffix}")
        os.replace(fresh, path)
    finally:
        for leftover in (fresh, recovered, work):
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(f"{leftover}{suffix}"):
                    os.remove(f"{leftover}{suffix}")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        report.to_reembed = conn.execute(
            "SELECT COUNT(*) FROM media m WHERE m.status = 'ok' AND NOT EXISTS "
            "(SELECT 1 FROM embeddings e WHERE e.media_id = m.id)").fetchone()[0]
        report.without_folder = conn.execute(
            "SELECT COUNT(*) FROM media WHERE folder_id IS NULL OR folder_id NOT IN (SELECT id FROM folders)"
        ).fetchone()[0]
    finally:
        conn.close()


def _recover_with_sqlite3(path: Path, target: Path) -> bool:
    """``sqlite3 PATH .recover`` into ``target``; False when the program is missing or fails."""
    program = shutil.which("sqlite3")
    if program is None:
        return False
    try:
        dump = subprocess.run([program, str(path), ".recover"], capture_output=True, timeout=RECOVER_TIMEOUT_S,
                              check=True).stdout
        conn = sqlite3.connect(target, isolation_level=None)
        try:
            conn.executescript(dump.decode("utf-8", "surrogateescape"))
        finally:
            conn.close()
        return True
    except (OSError, subprocess.SubprocessError, sqlite3.Error, UnicodeError) as error:
        log.info("sqlite3 .recover did not work (%s); reading row by row", error)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{target}{suffix}"):
                os.remove(f"{target}{suffix}")
        return False


# Where the damaged file still names its media rows by id: what of these is not salvaged was lost.
_MEDIA_REFERENCES = (("embeddings", "media_id"), ("segments", "media_id"), ("texts", "media_id"),
                     ("signal_results", "media_id"), ("media_fts_docsize", "id"), ("media", "id"))
_MEDIA_INDEXES = (("idx_media_size", "size"), ("idx_media_folder_id", "folder_id"), ("idx_media_path", "path"),
                  ("idx_media_hash", "hash"))


def _referenced_media(path: Path) -> set[int]:
    """Ids of the media rows the (damaged) file at ``path`` holds or refers to, as far as it can be read."""
    ids: set[int] = set()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        for table, column in _MEDIA_REFERENCES:
            try:
                ids.update(row[0] for row in _readable_rows(conn, table, [column]) if isinstance(row[0], int))
            except sqlite3.DatabaseError:
                continue  # the table is not in the readable schema
        for index, column in _MEDIA_INDEXES:  # an index's pages hold every row's id, often on pages that survived
            try:
                for (media_id,) in conn.execute(f"SELECT id FROM media INDEXED BY {index} ORDER BY {column}"):
                    ids.add(media_id)
            except sqlite3.DatabaseError:
                continue
    finally:
        conn.close()
    return ids


def _media_ids(path: Path) -> set[int]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return {row[0] for row in conn.execute("SELECT id FROM media")}
    finally:
        conn.close()


def _readable_rows(conn: sqlite3.Connection, table: str, columns: list[str],
                   unreadable: set[str] | None = None) -> Iterator[tuple]:
    """Every row of ``table`` that SQLite can still read, in rowid order, stepping over bad pages (the
    table's name goes into ``unreadable`` when there were any)."""
    select = f"SELECT rowid, {', '.join(columns)} FROM {table}"
    last: int | None = None
    skips = 0
    while True:
        try:
            query, params = (select + " ORDER BY rowid", ()) if last is None else \
                (select + " WHERE rowid > ? ORDER BY rowid", (last,))
            for row in conn.execute(query, params):
                last = row[0]
                yield row[1:]
            return
        except sqlite3.DatabaseError as error:
            if "no such table" in str(error) or "no such column" in str(error):
                raise
            if unreadable is not None:
                unreadable.add(table)
            skips += 1
            last = (last or 0) + 2 ** skips  # jump past the damaged page
            if skips > _MAX_SKIPS or last >= 2**62:
                log.info("%s: giving up after %d unreadable stretches (%s)", table, skips, error)
                return


def _copy_rows(source: Path, target: Path, unreadable: set[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    src = sqlite3.connect(source, isolation_level=None)
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        try:
            src_tables = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError:
            src_tables = set(TABLES)  # the schema page itself is damaged: try every table anyway
            unreadable.add("sqlite_master")
        dst.execute("PRAGMA foreign_keys = OFF")
        dst.execute("BEGIN")
        for table in TABLES:
            if table in src_tables:
                counts[table] = _copy_table(src, dst, table, unreadable)
        _drop_orphans(dst)
        dst.execute("INSERT INTO media_fts(media_fts) VALUES ('rebuild')")
        dst.execute("COMMIT")
    finally:
        src.close()
        dst.close()
    return counts


def _copy_table(src: sqlite3.Connection, dst: sqlite3.Connection, table: str, unreadable: set[str]) -> int:
    """Copy every readable row of ``table`` (the columns both files have); the number copied."""
    columns = [r[1] for r in dst.execute(f"PRAGMA table_info({table})")]
    try:
        present = {r[1] for r in src.execute(f"PRAGMA table_info({table})")}
        columns = [c for c in columns if c in present]
    except sqlite3.DatabaseError:
        pass
    insert = f"INSERT OR IGNORE INTO {table}({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    copied = 0
    try:
        for row in _readable_rows(src, table, columns, unreadable):
            try:
                dst.execute(insert, row)
                copied += 1
            except sqlite3.Error:
                continue  # a row that does not fit the schema is not worth keeping
    except sqlite3.DatabaseError:  # the table is not in the readable schema
        unreadable.add(table)
    return copied


def _drop_orphans(dst: sqlite3.Connection) -> None:
    """What lost its parent goes: it could never be found or shown again."""
    dst.execute("DELETE FROM embeddings WHERE media_id NOT IN (SELECT id FROM media)")
    dst.execute("DELETE FROM segments WHERE media_id NOT IN (SELECT id FROM media)")
    dst.execute("DELETE FROM texts WHERE media_id IS NOT NULL AND media_id NOT IN (SELECT id FROM media)")
    dst.execute("DELETE FROM text_embeddings WHERE text_id NOT IN (SELECT id FROM texts)")
    for table in ("signal_results", "signal_facts", "signal_boxes", "faces"):
        dst.execute(f"DELETE FROM {table} WHERE media_id NOT IN (SELECT id FROM media)")
    # A "No" about a face or a person that is gone asks nothing any more.
    dst.execute("DELETE FROM people_rejections WHERE b NOT IN (SELECT id FROM people) OR (kind = 'face' AND "
                "a NOT IN (SELECT id FROM faces)) OR (kind = 'same' AND a NOT IN (SELECT id FROM people))")
    # Facts and boxes without their result row would never be redone: the second pass redoes the file.
    dst.execute("DELETE FROM signal_facts WHERE NOT EXISTS (SELECT 1 FROM signal_results r WHERE "
                "r.media_id = signal_facts.media_id AND r.signal = signal_facts.signal)")
    dst.execute("DELETE FROM signal_boxes WHERE NOT EXISTS (SELECT 1 FROM signal_results r WHERE "
                "r.media_id = signal_boxes.media_id AND r.signal = signal_boxes.signal)")
    # A video without its segments is re-read in full, so its timestamps come back too.
    dst.execute("DELETE FROM embeddings WHERE media_id IN (SELECT id FROM media WHERE kind = 'video') AND "
                "NOT EXISTS (SELECT 1 FROM segments s WHERE s.media_id = embeddings.media_id "
                "AND s.model_id = embeddings.model_id)")


def _remove_vector_indexes(path: Path) -> None:
    """The HNSW files are caches of SQLite: after a repair they are rebuilt from it."""
    for kind in KIND_TABLES:
        for candidate in path.parent.glob(f"{path.stem}.{kind}.*"):
            if candidate.name.endswith((".hnsw", ".ids.npy", ".json", ".tmp", ".tmp.npy")):
                candidate.unlink(missing_ok=True)
