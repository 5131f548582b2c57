"""Media rows and file state: what a run compares its scan with (``media_state``), the rows' writes
(``upsert_media``, ``update_media``), folders, failures, and ``delete_media_data``, the one place a row's
vectors, segments, caption texts and signal results are deleted."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from app.library.dates import EARLIEST, LATEST, capture_time, clamp_mtime_ns
from app.library.db import id_chunks
from app.library.pathtext import from_db, path_prefix_sql
from app.library.storage.people import delete_faces
from app.library.storage.signals import delete_signal_results


@dataclass(frozen=True)
class StoredMedia:
    """A media row as the planner needs it."""

    id: int
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    status: str  # ok | error | forgotten
    has_embedding: bool  # for the run's model


def media_state(conn: sqlite3.Connection, model_id: str) -> dict[str, StoredMedia]:
    """Every media row by path, with whether ``model_id`` has embedded it."""
    rows = conn.execute(
        "SELECT m.id, m.path, m.size, m.mtime_ns, m.hash, m.status, e.media_id IS NOT NULL AS has_embedding "
        "FROM media m LEFT JOIN embeddings e ON e.media_id = m.id AND e.model_id = ?", (model_id,))
    state = {}
    for row_id, path, size, mtime_ns, digest, status, has_embedding in rows:
        path = from_db(path)
        state[path] = StoredMedia(row_id, path, size, mtime_ns, digest, status, bool(has_embedding))
    return state


def _dated(values: dict) -> dict:
    """``values`` with its times inside the library's date range (app.library.dates): a modification time
    of 2300 would not fit SQLite's INTEGER in nanoseconds, a capture time past 9999 has no month."""
    values = dict(values)
    if values.get("mtime_ns") is not None:
        values["mtime_ns"] = clamp_mtime_ns(values["mtime_ns"])
    if "captured_at" in values:
        values["captured_at"] = capture_time(values["captured_at"])
    return values


def upsert_media(conn: sqlite3.Connection, values: dict) -> int:
    """Insert or update the media row of ``values["path"]``; its id."""
    values = _dated(values)
    columns = ", ".join(values)
    updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "path")
    return conn.execute(
        f"INSERT INTO media({columns}) VALUES ({', '.join('?' * len(values))}) "
        f"ON CONFLICT(path) DO UPDATE SET {updates} RETURNING id", list(values.values())).fetchone()[0]


def update_media(conn: sqlite3.Connection, media_id: int, values: dict) -> None:
    """Set some columns of one media row."""
    values = _dated(values)
    assignments = ", ".join(f"{column} = ?" for column in values)
    conn.execute(f"UPDATE media SET {assignments} WHERE id = ?", (*values.values(), media_id))


def delete_media_data(conn: sqlite3.Connection, media_ids: list[int],
                      model_id: str | None = None) -> tuple[list[int], list[int]]:
    """Delete rows' embeddings and segments (only ``model_id``'s when given) and their caption texts with
    every model's text embeddings; without ``model_id`` also their signal results, facts, boxes and faces.
    Returns the removed (segment ids, text ids) for the vector indexes."""
    segments: list[int] = []
    texts: list[int] = []
    for chunk, marks in id_chunks(media_ids):
        scope, scope_args = ("", ()) if model_id is None else (" AND model_id = ?", (model_id,))
        segments += [r[0] for r in conn.execute(
            f"SELECT id FROM segments WHERE media_id IN ({marks}){scope}", (*chunk, *scope_args))]
        conn.execute(f"DELETE FROM segments WHERE media_id IN ({marks}){scope}", (*chunk, *scope_args))
        conn.execute(f"DELETE FROM embeddings WHERE media_id IN ({marks}){scope}", (*chunk, *scope_args))
        if model_id is None:  # the content changed or the row goes: what the signals read of it too
            delete_signal_results(conn, chunk)
            delete_faces(conn, chunk)
        text_ids = [r[0] for r in conn.execute(f"SELECT id FROM texts WHERE media_id IN ({marks})", chunk)]
        if text_ids:
            tmarks = ",".join("?" * len(text_ids))
            conn.execute(f"DELETE FROM text_embeddings WHERE text_id IN ({tmarks})", text_ids)
            conn.execute(f"DELETE FROM texts WHERE id IN ({tmarks})", text_ids)
        texts += text_ids
    return segments, texts


# A media row's date (EXIF capture time, else modification time) as filters and browsing read it, clamped to
# the range of app.library.dates: rows written before that range existed sort and group as they are shown.
MEDIA_DATE_SQL = f"MIN(MAX(COALESCE(m.captured_at, m.mtime_ns / 1e9), {EARLIEST:.0f}), {LATEST:.0f})"
MEDIA_COLUMNS = (
    "id, path, kind, size, mtime_ns, hash, width, height, duration, captured_at, status, error, "
    "model_id, indexed_at, caption, folder_id"
)


def delete_forgotten_under(conn: sqlite3.Connection, folder: Path) -> None:
    """Drop the forgotten rows under ``folder`` (it is watched again: its files come back)."""
    clause, params = path_prefix_sql("path", folder)
    conn.execute(f"DELETE FROM media WHERE status = 'forgotten' AND {clause}", params)


def media_ids_under(conn: sqlite3.Connection, target: Path, forgotten_too: bool = False) -> set[int]:
    """Ids of the media rows at or under ``target`` (forgotten ones only with ``forgotten_too``)."""
    clause, params = path_prefix_sql("path", target)
    scope = "" if forgotten_too else "status != 'forgotten' AND "
    return {r[0] for r in conn.execute(f"SELECT id FROM media WHERE {scope}{clause}", params)}


def delete_folder(conn: sqlite3.Connection, folder_id: int) -> None:
    conn.execute("DELETE FROM folders WHERE id = ?", (folder_id,))


def media_rows(conn: sqlite3.Connection, ids: list[int]) -> list[tuple]:
    """The ``MEDIA_COLUMNS`` of these rows (paths as stored: ``from_db`` reads them)."""
    rows = []
    for chunk, marks in id_chunks(ids):
        rows += conn.execute(f"SELECT {MEDIA_COLUMNS} FROM media WHERE id IN ({marks})", chunk).fetchall()
    return rows


def media_row_by_path(conn: sqlite3.Connection, stored_path: str | bytes) -> tuple | None:
    return conn.execute(f"SELECT {MEDIA_COLUMNS} FROM media WHERE path = ?", (stored_path,)).fetchone()


def remove_media_rows(conn: sqlite3.Connection, ids: list[int], keep_rows_as_forgotten: bool = False) -> None:
    """Delete media rows, or keep them marked ``forgotten`` (their data goes with ``delete_media_data``)."""
    for chunk, marks in id_chunks(ids):
        if keep_rows_as_forgotten:
            conn.execute(f"UPDATE media SET status = 'forgotten', error = NULL, model_id = NULL "
                         f"WHERE id IN ({marks})", chunk)
        else:
            conn.execute(f"DELETE FROM media WHERE id IN ({marks})", chunk)


def failed_files(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(path, error) of the files that could not be read, then of the folders the last scan could not read."""
    rows = [(from_db(path), error) for path, error in conn.execute(
        "SELECT path, error FROM media WHERE status = 'error' ORDER BY path")]
    return rows + [(from_db(path), error) for path, error in conn.execute(
        "SELECT path, error FROM scan_errors ORDER BY path")]


def readable_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM media WHERE status = 'ok'").fetchone()[0]


def replace_scan_errors(conn: sqlite3.Connection, errors: list[tuple[bytes | str, str, float]]) -> None:
    """The folders the last scan could not read: (stored path, reason, when)."""
    conn.execute("DELETE FROM scan_errors")
    conn.executemany("INSERT INTO scan_errors(path, error, seen_at) VALUES (?, ?, ?)", errors)
