"""The indexer's reads and writes of the library database, as named operations.

``media_state`` reads what is stored (rows by name), ``plan_run`` decides from that and a scan what a
run must do (a pure function: the content hash is passed in), and the write operations run inside one
of the caller's transactions: ``upsert_media``, ``delete_media_data`` (a row's vectors, segments and
caption texts: the one place they are deleted), ``store_vectors``. ``Library.apply`` mirrors the ids
they return in the vector indexes after the commit.
"""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.library.dates import EARLIEST, LATEST, capture_time, clamp_mtime_ns
from app.library.db import blob_to_vector, vector_to_blob
from app.library.pathtext import from_db, path_prefix_sql
from app.library.scanner import ScannedFile, ScanResult
from app.library.signals.base import AT_LEAST_ONE, CONTAINS, EQUALS_EACH_PART, FactCondition, FactFilter


def id_chunks(ids: list, size: int = 500) -> Iterator[tuple[list, str]]:
    """``ids`` in chunks of at most ``size`` with their "?,?,?" placeholders (SQLite caps a statement's
    parameters)."""
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        yield chunk, ",".join("?" * len(chunk))


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


@dataclass
class Job:
    """A file to (re)read: its row (None for a new file), the hash it had when it was last read, and
    whether the run's model already embedded it."""

    file: ScannedFile
    row_id: int | None
    old_hash: str | None
    has_embedding: bool


@dataclass
class RunPlan:
    jobs: list[Job] = field(default_factory=list)  # files to read
    moves: list[tuple[ScannedFile, StoredMedia]] = field(default_factory=list)  # new path, the row it keeps
    gone: list[int] = field(default_factory=list)  # rows whose file is no longer there
    unchanged: int = 0


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


def plan_run(scan: ScanResult, stored: dict[str, StoredMedia], retry_failed: bool,
             hash_of: Callable[[ScannedFile], str | None]) -> RunPlan:
    """Decide per file: unchanged, moved, deleted, or to be (re)read. ``hash_of`` is asked only for new
    files whose size matches a missing row (a move candidate)."""
    plan = RunPlan()
    seen: set[str] = set()
    new_jobs: list[Job] = []
    for file in scan.files:
        path = str(file.path)
        seen.add(path)
        row = stored.get(path)
        if row is None:
            new_jobs.append(Job(file, None, None, False))
            continue
        same_stat = row.size == file.size and row.mtime_ns == file.mtime_ns
        if same_stat and (row.status == "forgotten" or (row.status == "error" and not retry_failed)
                          or (row.status == "ok" and row.has_embedding)):
            plan.unchanged += 1
            continue
        plan.jobs.append(Job(file, row.id, row.hash if row.status == "ok" else None, row.has_embedding))

    # Rows whose file is gone, except under folders that could not be read this time.
    unreadable = [str(p).rstrip("/") + "/" for p in scan.unreadable]
    missing = {
        path: row for path, row in stored.items()
        if path not in seen and row.status != "forgotten"
        and not any(path.startswith(u) or path == u.rstrip("/") for u in unreadable)
    }
    missing.update({p: r for p, r in stored.items() if r.status == "forgotten" and p not in seen
                    and not any(p.startswith(u) for u in unreadable)})
    # Moves: a new path with the content of a missing row keeps that row (and its embeddings).
    by_size: dict[int, list[StoredMedia]] = {}
    for row in missing.values():
        if row.status == "ok" and row.hash:
            by_size.setdefault(row.size, []).append(row)
    for job in new_jobs:
        candidates = by_size.get(job.file.size)
        if candidates:
            digest = hash_of(job.file)
            match = next((r for r in candidates if r.hash == digest and r.path in missing), None)
            if match is not None:
                missing.pop(match.path)
                plan.moves.append((job.file, match))
                continue
        plan.jobs.append(job)
    plan.gone = [row.id for row in missing.values()]
    return plan


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
    every model's text embeddings; without ``model_id`` also their signal results, facts and boxes. Returns the removed (segment ids, text ids) for the vector indexes."""
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
        text_ids = [r[0] for r in conn.execute(f"SELECT id FROM texts WHERE media_id IN ({marks})", chunk)]
        if text_ids:
            tmarks = ",".join("?" * len(text_ids))
            conn.execute(f"DELETE FROM text_embeddings WHERE text_id IN ({tmarks})", text_ids)
            conn.execute(f"DELETE FROM texts WHERE id IN ({tmarks})", text_ids)
        texts += text_ids
    return segments, texts


@dataclass
class StoredVectors:
    """The ids written by ``store_vectors``, per vector index kind, for ``Library.apply``."""

    add: dict[str, tuple[list[int], list[np.ndarray]]] = field(
        default_factory=lambda: {"media": ([], []), "segment": ([], []), "text": ([], [])})

    def record(self, kind: str, row_id: int, vector: np.ndarray) -> None:
        self.add[kind][0].append(row_id)
        self.add[kind][1].append(vector)

    def stacked(self) -> dict[str, tuple[list[int], np.ndarray]]:
        return {k: (ids, np.stack(vecs)) for k, (ids, vecs) in self.add.items() if ids}


def store_vectors(conn: sqlite3.Connection, out: StoredVectors, media_id: int, model_id: str, generation: int,
                  vector: np.ndarray, segments: list[tuple[float, float, np.ndarray]] = (),
                  caption: tuple[str, np.ndarray] | None = None) -> None:
    """Write one media row's embedding, its video segments (start, end, vector) and its caption's text
    embedding; the new ids go to ``out``."""
    conn.execute("INSERT INTO embeddings(media_id, model_id, vector, gen) VALUES (?, ?, ?, ?)",
                 (media_id, model_id, vector_to_blob(vector), generation))
    out.record("media", media_id, vector)
    for start, end, segment_vector in segments:
        segment_id = conn.execute(
            "INSERT INTO segments(media_id, model_id, start_s, end_s, vector, gen) VALUES (?, ?, ?, ?, ?, ?) "
            "RETURNING id", (media_id, model_id, start, end, vector_to_blob(segment_vector), generation)).fetchone()[0]
        out.record("segment", segment_id, segment_vector)
    if caption is not None:
        text, text_vector = caption
        text_id = conn.execute("INSERT INTO texts(text, source, media_id) VALUES (?, 'caption', ?) RETURNING id",
                               (text, media_id)).fetchone()[0]
        conn.execute("INSERT INTO text_embeddings(text_id, model_id, vector, gen) VALUES (?, ?, ?, ?)",
                     (text_id, model_id, vector_to_blob(text_vector), generation))
        out.record("text", text_id, text_vector)


# -- the Library's reads and writes (folders, media rows, stored vectors, status) ----------------------

# Embedding kinds, each with its own vector index: media (one per image/video), segment (video frames, for
# timestamps), text (captions and vocabulary, for image -> text); their table and id column.
# A media row's date (EXIF capture time, else modification time) as filters and browsing read it, clamped to
# the range of app.library.dates: rows written before that range existed sort and group as they are shown.
MEDIA_DATE_SQL = f"MIN(MAX(COALESCE(m.captured_at, m.mtime_ns / 1e9), {EARLIEST:.0f}), {LATEST:.0f})"
KIND_TABLES = {"media": "embeddings", "segment": "segments", "text": "text_embeddings"}
KIND_ID_COLUMNS = {"media": "media_id", "segment": "id", "text": "text_id"}
MEDIA_COLUMNS = (
    "id, path, kind, size, mtime_ns, hash, width, height, duration, captured_at, status, error, "
    "model_id, indexed_at, caption, folder_id"
)


def delete_model_vectors(conn: sqlite3.Connection, model_id: str) -> None:
    """Delete one model's embeddings, segments and text embeddings (after a switch to another model)."""
    for table in KIND_TABLES.values():
        conn.execute(f"DELETE FROM {table} WHERE model_id = ?", (model_id,))


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


def embedding(conn: sqlite3.Connection, media_id: int, model_id: str | None) -> np.ndarray | None:
    """One row's embedding by ``model_id`` (a copy), or None."""
    row = conn.execute("SELECT vector FROM embeddings WHERE media_id = ? AND model_id = ?",
                       (media_id, model_id)).fetchone()
    return blob_to_vector(row[0]).copy() if row else None


def remove_media_rows(conn: sqlite3.Connection, ids: list[int], keep_rows_as_forgotten: bool = False) -> None:
    """Delete media rows, or keep them marked ``forgotten`` (their data goes with ``delete_media_data``)."""
    for chunk, marks in id_chunks(ids):
        if keep_rows_as_forgotten:
            conn.execute(f"UPDATE media SET status = 'forgotten', error = NULL, model_id = NULL "
                         f"WHERE id IN ({marks})", chunk)
        else:
            conn.execute(f"DELETE FROM media WHERE id IN ({marks})", chunk)


def stored_vectors(conn: sqlite3.Connection, kind: str, model_id: str, ids: list[int],
                   max_gen: int | None = None) -> list[tuple[int, bytes]]:
    """(id, vector blob) of these ids of one embedding kind (only those written by generation ``max_gen``
    or before, when given)."""
    id_column = KIND_ID_COLUMNS[kind]
    rows: list[tuple[int, bytes]] = []
    scope, scope_args = ("", ()) if max_gen is None else (" AND gen IS NOT NULL AND gen <= ?", (max_gen,))
    for chunk, marks in id_chunks(ids, 5000):
        rows += conn.execute(f"SELECT {id_column}, vector FROM {KIND_TABLES[kind]} WHERE model_id = ? "
                             f"AND {id_column} IN ({marks}){scope}", (model_id, *chunk, *scope_args)).fetchall()
    return rows


def stored_dim(conn: sqlite3.Connection, kind: str, model_id: str) -> int | None:
    """The dimension of one embedding kind's stored vectors (None when there are none)."""
    row = conn.execute(f"SELECT vector FROM {KIND_TABLES[kind]} WHERE model_id = ? LIMIT 1", (model_id,)).fetchone()
    return len(row[0]) // 4 if row else None


def stored_ids(conn: sqlite3.Connection, kind: str, model_id: str) -> set[int]:
    id_column = KIND_ID_COLUMNS[kind]
    return {r[0] for r in conn.execute(f"SELECT {id_column} FROM {KIND_TABLES[kind]} WHERE model_id = ?", (model_id,))}


def stored_vector_batches(conn: sqlite3.Connection, kind: str, model_id: str, since: int | None,
                          batch: int = 20000) -> Iterator[list[tuple[int, bytes]]]:
    """(id, vector blob) of one embedding kind in batches: all of them (``since`` None), or those written
    after generation ``since`` (and any without a generation)."""
    id_column = KIND_ID_COLUMNS[kind]
    query = f"SELECT {id_column}, vector FROM {KIND_TABLES[kind]} WHERE model_id = ?"
    params: tuple = (model_id,)
    if since is not None:
        query += " AND (gen > ? OR gen IS NULL)"
        params = (model_id, since)
    cursor = conn.execute(query, params)
    while rows := cursor.fetchmany(batch):
        yield rows


def stored_count(conn: sqlite3.Connection, kind: str, model_id: str | None) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM {KIND_TABLES[kind]} WHERE model_id = ?", (model_id,)).fetchone()[0]


def failed_files(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """(path, error) of the files that could not be read, then of the folders the last scan could not read."""
    rows = [(from_db(path), error) for path, error in conn.execute(
        "SELECT path, error FROM media WHERE status = 'error' ORDER BY path")]
    return rows + [(from_db(path), error) for path, error in conn.execute(
        "SELECT path, error FROM scan_errors ORDER BY path")]


def embedded_by_kind(conn: sqlite3.Connection, model_id: str | None) -> dict[str, int]:
    """kind -> readable rows ``model_id`` has embedded."""
    return dict(conn.execute(
        "SELECT m.kind, COUNT(*) FROM media m JOIN embeddings e ON e.media_id = m.id AND e.model_id = ? "
        "WHERE m.status = 'ok' GROUP BY m.kind", (model_id,)).fetchall())


def readable_count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM media WHERE status = 'ok'").fetchone()[0]


# -- search's reads --------------------------------------------------------------------------


def segment_spans(conn: sqlite3.Connection, media_ids: list[int],
                  model_id: str) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """media id -> (starts, ends, vectors) of its segments for ``model_id``, in time order; a few queries
    for any number of ids."""
    rows: dict[int, list] = {}
    for chunk, marks in id_chunks(media_ids):
        for media_id, start_s, end_s, vector in conn.execute(
                f"SELECT media_id, start_s, end_s, vector FROM segments WHERE model_id = ? AND media_id IN ({marks}) "
                "ORDER BY media_id, start_s", (model_id, *chunk)):
            rows.setdefault(media_id, []).append((start_s, end_s, vector))
    return {media_id: (np.array([r[0] for r in spans]), np.array([r[1] for r in spans]),
                       np.stack([blob_to_vector(r[2]) for r in spans]))
            for media_id, spans in rows.items()}


def vocabulary_count(conn: sqlite3.Connection, model_id: str) -> int:
    """How many vocabulary phrases ``model_id`` has embedded."""
    return conn.execute(
        "SELECT COUNT(*) FROM text_embeddings e JOIN texts t ON t.id = e.text_id "
        "WHERE t.source = 'vocabulary' AND e.model_id = ?", (model_id,)).fetchone()[0]


def vocabulary_vectors(conn: sqlite3.Connection, model_id: str) -> np.ndarray:
    """The vocabulary embeddings of ``model_id`` in text id order ([0] rows when there are none)."""
    rows = conn.execute(
        "SELECT e.vector FROM text_embeddings e JOIN texts t ON t.id = e.text_id "
        "WHERE t.source = 'vocabulary' AND e.model_id = ? ORDER BY t.id", (model_id,)).fetchall()
    return np.stack([blob_to_vector(r[0]) for r in rows]) if rows else np.zeros((0, 0), np.float32)


def segment_owners(conn: sqlite3.Connection, segment_ids: list[int]) -> dict[int, tuple[int, float, float]]:
    """segment id -> (media id, start, end)."""
    if not segment_ids:
        return {}
    marks = ",".join("?" * len(segment_ids))
    return {segment_id: (media_id, start, end) for segment_id, media_id, start, end in conn.execute(
        f"SELECT id, media_id, start_s, end_s FROM segments WHERE id IN ({marks})", segment_ids)}


def filtered_ids(conn: sqlite3.Connection, ids: list[int], where: str, params: list) -> set[int]:
    """The ``ids`` whose media row passes ``where`` (a ``filter_sql`` condition on ``m``)."""
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    return {r[0] for r in conn.execute(f"SELECT m.id FROM media m WHERE m.id IN ({marks}) AND {where}",
                                       [*ids, *params])}


def readable_kinds(conn: sqlite3.Connection, where: str, params: list) -> dict[int, str]:
    """media id -> kind of every readable row passing ``where``."""
    return {media_id: kind for media_id, kind in conn.execute(
        f"SELECT m.id, m.kind FROM media m WHERE m.status = 'ok' AND {where}", params)}


# bm25 weights of the FTS columns (name, folder_names, caption, signal_text): a person's caption says more
# than text a machine read (places, OCR)
LEXICAL_WEIGHTS = (2.0, 1.0, 2.0, 1.0)


def lexical(conn: sqlite3.Connection, match: str, where: str, params: list, limit: int,
            words: list[str] | None = None) -> list[int]:
    """Readable media ids matching an FTS5 ``match`` on names, folder names, captions and signal text
    (places, text in photos), best first. ``words`` (the query's words): files whose own name holds more of
    them come first, whatever their length; BM25 alone lets a long caption push "china.jpg" below
    "flower.jpg" of the same "Trip to China 2011" folder, its length normalisation outweighing the name."""
    weights = ", ".join(map(str, LEXICAL_WEIGHTS))
    rows = conn.execute(
        f"SELECT m.id, m.name FROM media_fts f JOIN media m ON m.id = f.rowid "
        f"WHERE media_fts MATCH ? AND m.status = 'ok' AND {where} ORDER BY bm25(media_fts, {weights}) LIMIT ?",
        [match, *params, limit]).fetchall()
    if words:
        def in_name(name) -> int:
            tokens = re.findall(r"\w+", str(name or "").lower())
            return sum(any(t.startswith(w) for t in tokens) for w in words)

        rows.sort(key=lambda row: -in_name(row[1]))  # stable: BM25 order within each count
    return [row[0] for row in rows]


def texts_by_id(conn: sqlite3.Connection, text_ids: list[int]) -> dict[int, tuple[str, str, int | None]]:
    """text id -> (text, source, media id)."""
    if not text_ids:
        return {}
    marks = ",".join("?" * len(text_ids))
    return {text_id: (text, source, media_id) for text_id, text, source, media_id in conn.execute(
        f"SELECT id, text, source, media_id FROM texts WHERE id IN ({marks})", text_ids)}


# -- the indexer's other writes --------------------------------------------------------------


def replace_scan_errors(conn: sqlite3.Connection, errors: list[tuple[bytes | str, str, float]]) -> None:
    """The folders the last scan could not read: (stored path, reason, when)."""
    conn.execute("DELETE FROM scan_errors")
    conn.executemany("INSERT INTO scan_errors(path, error, seen_at) VALUES (?, ?, ?)", errors)


def vocabulary_size(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT COUNT(*) FROM texts WHERE source = 'vocabulary'").fetchone()[0]


def add_vocabulary(conn: sqlite3.Connection, phrases: list[str]) -> None:
    conn.executemany("INSERT OR IGNORE INTO texts(text, source, media_id) VALUES (?, 'vocabulary', NULL)",
                     [(t,) for t in phrases])


def vocabulary_to_embed(conn: sqlite3.Connection, model_id: str) -> list[tuple[int, str]]:
    """(text id, phrase) of the vocabulary ``model_id`` has not embedded, in id order."""
    return conn.execute(
        "SELECT t.id, t.text FROM texts t LEFT JOIN text_embeddings e ON e.text_id = t.id AND e.model_id = ? "
        "WHERE e.text_id IS NULL AND t.source = 'vocabulary' ORDER BY t.id", (model_id,)).fetchall()


def store_text_vectors(conn: sqlite3.Connection, text_ids: list[int], vectors: np.ndarray, model_id: str,
                       generation: int) -> None:
    conn.executemany("INSERT OR REPLACE INTO text_embeddings(text_id, model_id, vector, gen) VALUES (?, ?, ?, ?)",
                     [(tid, model_id, vector_to_blob(v), generation) for tid, v in zip(text_ids, vectors)])


def unembedded_count(conn: sqlite3.Connection, model_id: str) -> int:
    """Readable media rows ``model_id`` has not embedded yet."""
    return conn.execute(
        "SELECT COUNT(*) FROM media m LEFT JOIN embeddings e ON e.media_id = m.id AND e.model_id = ? "
        "WHERE m.status = 'ok' AND e.media_id IS NULL", (model_id,)).fetchone()[0]


# -- signals (place, EXIF, text in photos, faces) ----------------------------------------------


def delete_signal_results(conn: sqlite3.Connection, media_ids: list[int], signal: str | None = None) -> None:
    """Forget what the signals (or one signal) found in these rows, and their words in the text index."""
    for chunk, marks in id_chunks(media_ids):
        scope, args = ("", ()) if signal is None else (" AND signal = ?", (signal,))
        for table in ("signal_boxes", "signal_facts", "signal_results"):
            conn.execute(f"DELETE FROM {table} WHERE media_id IN ({marks}){scope}", (*chunk, *args))
        if signal in (None, "faces"):
            delete_faces(conn, chunk)
        conn.execute(f"UPDATE media SET signal_text = (SELECT group_concat(text, ' ') FROM signal_results r "
                     f"WHERE r.media_id = media.id AND r.text != '') WHERE id IN ({marks})", chunk)


def store_signal_result(conn: sqlite3.Connection, media_id: int, signal: str, version: int, output,
                        error: str | None = None, now: float | None = None) -> None:
    """Replace one (media, signal) result: ``output`` (a ``SignalOutput``) when it read the file, else the
    ``error``. The media row's ``signal_text`` (in the full-text index) is rebuilt from all its signals."""
    conn.execute("DELETE FROM signal_boxes WHERE media_id = ? AND signal = ?", (media_id, signal))
    conn.execute("DELETE FROM signal_facts WHERE media_id = ? AND signal = ?", (media_id, signal))
    if signal == "faces" and (output is None or error is not None):
        delete_faces(conn, [media_id])
    text = (output.text or "").strip() if output is not None else ""
    conn.execute("INSERT OR REPLACE INTO signal_results(media_id, signal, version, status, error, text, done_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?)", (media_id, signal, version, "ok" if error is None else "error",
                                                  error, text, now))
    if output is not None and error is None:
        conn.executemany("INSERT INTO signal_facts(media_id, signal, key, value) VALUES (?, ?, ?, ?)",
                         [(media_id, signal, key, value) for key, value in output.facts.items()])
        conn.executemany("INSERT INTO signal_boxes(media_id, signal, x, y, w, h, score, label) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         [(media_id, signal, b.x, b.y, b.w, b.h, b.score, b.label) for b in output.boxes])
        if signal == "faces":
            store_faces(conn, media_id, output.boxes, getattr(output, "vectors", None) or [None] * len(output.boxes),
                        JOIN_DISTANCE, now)
        taken_at = capture_time(output.facts.get("taken_at"))
        if taken_at is not None:  # the date filters read captured_at: EXIF's time when there is one
            conn.execute("UPDATE media SET captured_at = ? WHERE id = ? AND captured_at IS NULL", (taken_at, media_id))
    conn.execute("UPDATE media SET signal_text = (SELECT group_concat(text, ' ') FROM signal_results r "
                 "WHERE r.media_id = media.id AND r.text != '') WHERE id = ?", (media_id,))


def signal_work(conn: sqlite3.Connection, signal: str, version: int, limit: int = 1000) -> list[tuple[int, str]]:
    """(media id, path) of readable images that ``signal`` at ``version`` has not read yet, by id."""
    return [(media_id, from_db(path)) for media_id, path in conn.execute(
        "SELECT m.id, m.path FROM media m LEFT JOIN signal_results r ON r.media_id = m.id AND r.signal = ? "
        "AND r.version = ? WHERE m.status = 'ok' AND m.kind = 'image' AND r.media_id IS NULL "
        "ORDER BY m.id LIMIT ?", (signal, version, limit))]


def signal_work_count(conn: sqlite3.Connection, signal: str, version: int) -> int:
    return conn.execute(
        "SELECT COUNT(*) FROM media m LEFT JOIN signal_results r ON r.media_id = m.id AND r.signal = ? "
        "AND r.version = ? WHERE m.status = 'ok' AND m.kind = 'image' AND r.media_id IS NULL",
        (signal, version)).fetchone()[0]


def signal_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """signal -> {status: rows} (ok, error)."""
    out: dict[str, dict[str, int]] = {}
    for signal, status, count in conn.execute(
            "SELECT signal, status, COUNT(*) FROM signal_results GROUP BY signal, status"):
        out.setdefault(signal, {})[status] = count
    return out


def signal_failures(conn: sqlite3.Connection, limit: int = 50) -> list[tuple[str, str, str]]:
    """(signal, path, error) of files a signal could not read."""
    return [(signal, from_db(path), error) for signal, path, error in conn.execute(
        "SELECT r.signal, m.path, r.error FROM signal_results r JOIN media m ON m.id = r.media_id "
        "WHERE r.status = 'error' ORDER BY r.signal, m.path LIMIT ?", (limit,))]


def media_facts(conn: sqlite3.Connection, media_ids: list[int]) -> dict[int, dict[str, str | int | float]]:
    """media id -> {fact key: value} of every signal (keys are distinct across signals)."""
    out: dict[int, dict] = {}
    for chunk, marks in id_chunks(media_ids):
        for media_id, key, value in conn.execute(
                f"SELECT media_id, key, value FROM signal_facts WHERE media_id IN ({marks}) ORDER BY signal, key",
                chunk):
            out.setdefault(media_id, {})[key] = value
    return out


def media_signal_details(conn: sqlite3.Connection, media_id: int) -> tuple[dict, list[tuple], dict[str, str]]:
    """One row's facts, boxes (signal, x, y, w, h, score, label) and signal texts, for a detail view."""
    facts = media_facts(conn, [media_id]).get(media_id, {})
    boxes = conn.execute("SELECT signal, x, y, w, h, score, label FROM signal_boxes WHERE media_id = ? "
                         "ORDER BY signal, id", (media_id,)).fetchall()
    texts = dict(conn.execute("SELECT signal, text FROM signal_results WHERE media_id = ? AND text != ''",
                              (media_id,)).fetchall())
    return facts, boxes, texts


def fact_groups(conn: sqlite3.Connection, keys: tuple[str, ...]) -> list[tuple[tuple[str, ...], int]]:
    """(values of ``keys``, photos) over the readable photos that have the first key ("" for a missing
    other one), most photos first, then by the values: a filter's choices (``FactFilter.choice_keys``)."""
    joins = " ".join(f"{'JOIN' if i == 0 else 'LEFT JOIN'} signal_facts k{i} ON k{i}.media_id = m.id AND k{i}.key = ?"
                     for i in range(len(keys)))
    values = ", ".join(f"COALESCE(k{i}.value, '')" for i in range(len(keys)))
    order = ", ".join(str(i + 1) for i in range(len(keys)))
    rows = conn.execute(f"SELECT {values}, COUNT(*) AS photos FROM media m {joins} WHERE m.status = 'ok' "
                        f"GROUP BY {order} ORDER BY photos DESC, {order}", keys).fetchall()
    return [(tuple(str(v) for v in row[:-1]), row[-1]) for row in rows]


def fact_condition_ids(conn: sqlite3.Connection, condition: FactCondition, where: str, params: list,
                       limit: int) -> list[int]:
    """Readable media whose numeric facts lie in ``condition``'s ranges (its first key present, a missing
    other one read as 0), passing ``where``; the largest ``rank_by`` first."""
    joins, join_args, tests, test_args, value_of = [], [], [], [], {}
    for i, (key, low, high) in enumerate(condition.ranges):
        joins.append(f"{'LEFT ' if i else ''}JOIN signal_facts k{i} ON k{i}.media_id = m.id AND k{i}.key = ?")
        join_args.append(key)
        value_of[key] = f"CAST(COALESCE(k{i}.value, 0) AS REAL)"
        for bound, op in ((low, ">="), (high, "<=")):
            if bound is not None:
                tests.append(f"{value_of[key]} {op} ?")
                test_args.append(bound)
    rank = value_of.get(condition.rank_by or "", "0")
    conditions = " AND ".join(["m.status = 'ok'", *tests, where])
    return [r[0] for r in conn.execute(
        f"SELECT m.id FROM media m {' '.join(joins)} WHERE {conditions} ORDER BY {rank} DESC, m.id LIMIT ?",
        [*join_args, *test_args, *params, limit])]


# -- search's filters: SQL conditions on ``m`` --------------------------------------------------------------

# A fact of a row's signals, as a SQL condition on ``m``.
_FACT = "EXISTS (SELECT 1 FROM signal_facts f WHERE f.media_id = m.id AND f.key IN ({keys}) AND {test})"


def fact_filter_sql(declared: FactFilter, value) -> tuple[list[str], list]:
    """The conditions (and their parameters) of one signal filter's value, by its match kind."""
    keys = ", ".join("?" * len(declared.keys))
    if declared.match == EQUALS_EACH_PART:
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        return ([_FACT.format(keys=keys, test="f.value = ? COLLATE NOCASE")] * len(parts),
                [arg for part in parts for arg in (*declared.keys, part)])
    if declared.match == CONTAINS:
        return [_FACT.format(keys=keys, test="f.value LIKE ?")], [*declared.keys, f"%{str(value).strip()}%"]
    if declared.match == AT_LEAST_ONE:
        return [_FACT.format(keys=keys, test="f.value >= 1" if value else "f.value = 0")], [*declared.keys]
    raise ValueError(f"unknown match kind {declared.match!r} of the filter {declared.name!r}")


def filter_sql(kind: str | None = None, folder: str | None = None, date_from: float | None = None,
               date_to: float | None = None, facts: list[tuple[FactFilter, object]] = (),
               people: list[str] = ()) -> tuple[str, list]:
    """A WHERE condition on ``m`` (and its parameters) for search's filters: the built-in ones (kind, folder,
    capture dates), the signals' (``facts``: each declared filter with its value; None values skipped) and
    ``people`` (case-folded names: a face of each must be in the photo)."""
    clauses, params = [], []
    if kind:
        clauses.append("m.kind = ?")
        params.append(kind)
    if folder:
        clause, folder_params = path_prefix_sql("m.path", Path(folder).expanduser().resolve())
        clauses.append(clause)
        params += folder_params
    date = MEDIA_DATE_SQL
    for bound, op in ((date_from, ">="), (date_to, "<=")):
        if bound is not None:
            clauses.append(f"{date} {op} ?")
            params.append(bound)
    for declared, value in facts:
        if value is not None and value != "":
            more, more_params = fact_filter_sql(declared, value)
            clauses += more
            params += more_params
    for key in people:
        clauses.append("EXISTS (SELECT 1 FROM faces x JOIN people p ON p.id = x.person_id WHERE x.media_id = m.id "
                       "AND p.name_key = ? AND p.merged_into IS NULL)")
        params.append(key)
    return (" AND ".join(clauses) or "1"), params


# -- people: faces, their identity vectors, and the people they are grouped into ------------------------
# A face joins the person whose centroid (the mean of their faces' vectors) is nearest, when it is within
# the join distance; otherwise it starts a new person. Faces a person placed (source 'user') and names are
# never changed by the grouping. ``people.merged_into`` keeps a merged person's row, so that a command
# naming it can say where it went.

# Euclidean distance between a new face's identity vector and a person's centroid under which the face
# joins that person. dlib documents 0.6 for two faces; a centroid sits nearer its own faces than they sit to
# each other, and on bench/faces_identity.py's real photos 0.5 kept every person whole while 0.6 let a
# false box join a real person (bench/RESULTS.md, "People: identity").
JOIN_DISTANCE = 0.5


def _face_rows(conn: sqlite3.Connection, media_id: int) -> list[tuple]:
    return conn.execute("SELECT id, x, y, w, h, person_id, source FROM faces WHERE media_id = ?",
                        (media_id,)).fetchall()


def _box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def live_centroids(conn: sqlite3.Connection) -> tuple[list[int], np.ndarray]:
    """(person ids, their centroids [n, 128]) of the people a new face may join (not merged away)."""
    rows = conn.execute("SELECT id, centroid FROM people WHERE merged_into IS NULL AND centroid IS NOT NULL "
                        "ORDER BY id").fetchall()
    if not rows:
        return [], np.zeros((0, 128), np.float32)
    return [r[0] for r in rows], np.stack([blob_to_vector(r[1]) for r in rows])


def update_centroids(conn: sqlite3.Connection, person_ids) -> None:
    """Recompute these people's centroids from their faces (NULL when none has a vector)."""
    for person_id in set(person_ids) - {None}:
        vectors = [blob_to_vector(r[0]) for r in conn.execute(
            "SELECT vector FROM faces WHERE person_id = ? AND vector IS NOT NULL", (person_id,))]
        centroid = vector_to_blob(np.mean(vectors, axis=0)) if vectors else None
        conn.execute("UPDATE people SET centroid = ? WHERE id = ?", (centroid, person_id))


def new_person(conn: sqlite3.Connection, now: float) -> int:
    return conn.execute("INSERT INTO people(hidden, created_at) VALUES (0, ?) RETURNING id", (now,)).fetchone()[0]


def store_faces(conn: sqlite3.Connection, media_id: int, boxes: list, vectors: list, join_distance: float,
                now: float | None) -> None:
    """Replace one photo's faces (``boxes`` with their identity ``vectors``, None for a face too small) and
    group each into a person (see the section's comment). A face where a person had placed one before (same
    place, IoU > 0.5) keeps that person: re-reading a photo never undoes a person's decision. A joined
    person's centroid moves as a running mean (no re-read of their other faces)."""
    now = now or 0.0
    old = _face_rows(conn, media_id)
    conn.execute("DELETE FROM faces WHERE media_id = ?", (media_id,))
    update_centroids(conn, {row[5] for row in old})  # a photo read again: its old faces no longer count
    person_ids, centroids = live_centroids(conn)
    for box, vector in zip(boxes, vectors):
        kept = next((row for row in old if row[6] == "user" and row[5] is not None
                     and _box_iou((box.x, box.y, box.w, box.h), row[1:5]) > 0.5), None)
        person_id, source = (kept[5], "user") if kept else (None, "auto")
        if person_id is None and vector is not None:
            if len(person_ids):
                distances = np.linalg.norm(centroids - vector, axis=1)
                nearest = int(np.argmin(distances))
                if distances[nearest] < join_distance:
                    person_id = person_ids[nearest]
            if person_id is None:
                person_id = new_person(conn, now)
                person_ids.append(person_id)
                centroids = np.vstack([centroids, np.zeros((1, centroids.shape[1]), np.float32)])
        if person_id is not None and vector is not None and person_id in person_ids:
            count = conn.execute("SELECT COUNT(*) FROM faces WHERE person_id = ? AND vector IS NOT NULL",
                                 (person_id,)).fetchone()[0]
            index = person_ids.index(person_id)
            centroids[index] = centroids[index] + (vector - centroids[index]) / (count + 1)
            conn.execute("UPDATE people SET centroid = ? WHERE id = ?", (vector_to_blob(centroids[index]), person_id))
        conn.execute("INSERT INTO faces(media_id, x, y, w, h, score, vector, person_id, source, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (media_id, box.x, box.y, box.w, box.h, box.score,
                      None if vector is None else vector_to_blob(vector), person_id, source, now))
        if person_id is not None and vector is not None and person_id not in person_ids:
            update_centroids(conn, [person_id])  # a person's own placement into someone without a centroid


def delete_faces(conn: sqlite3.Connection, media_ids: list[int]) -> None:
    """Forget the faces found in these rows (the people they belonged to keep their other faces)."""
    for chunk, marks in id_chunks(media_ids):
        people = [r[0] for r in conn.execute(
            f"SELECT DISTINCT person_id FROM faces WHERE media_id IN ({marks})", chunk)]
        conn.execute(f"DELETE FROM faces WHERE media_id IN ({marks})", chunk)
        update_centroids(conn, people)


@dataclass
class PersonRow:
    """One person as the people commands show it."""

    id: int
    name: str | None
    hidden: bool
    faces: int
    photos: int
    face_id: int | None  # a representative face: the largest, most confident
    media_id: int | None  # the photo of that face


def people_rows(conn: sqlite3.Connection, person_id: int | None = None) -> list[PersonRow]:
    """Live people (not merged away) with at least one face (or ``person_id`` only): most photos first."""
    scope, args = ("", ()) if person_id is None else (" AND p.id = ?", (person_id,))
    rows = conn.execute(
        "SELECT p.id, p.name, p.hidden, COUNT(f.id), COUNT(DISTINCT f.media_id), "
        "(SELECT b.id FROM faces b JOIN media bm ON bm.id = b.media_id WHERE b.person_id = p.id "
        " AND bm.status = 'ok' ORDER BY b.w * b.h * b.score DESC, b.id LIMIT 1) "
        "FROM people p JOIN faces f ON f.person_id = p.id JOIN media m ON m.id = f.media_id AND m.status = 'ok' "
        f"WHERE p.merged_into IS NULL{scope} GROUP BY p.id "
        "ORDER BY p.name IS NULL, COUNT(DISTINCT f.media_id) DESC, p.id", args).fetchall()
    out = []
    for pid, name, hidden, faces, photos, face_id in rows:
        media_id = conn.execute("SELECT media_id FROM faces WHERE id = ?", (face_id,)).fetchone()[0] \
            if face_id is not None else None
        out.append(PersonRow(pid, name, bool(hidden), faces, photos, face_id, media_id))
    return out


def person_state(conn: sqlite3.Connection, person_id: int) -> tuple[str | None, int | None] | None:
    """(name, merged into) of a person row, or None when there is no such person."""
    row = conn.execute("SELECT name, merged_into FROM people WHERE id = ?", (person_id,)).fetchone()
    return None if row is None else (row[0], row[1])


def person_photos(conn: sqlite3.Connection, person_id: int) -> list[tuple[int, str]]:
    """(media id, path) of a person's readable photos, largest face first."""
    return [(media_id, from_db(path)) for media_id, path in conn.execute(
        "SELECT m.id, m.path FROM faces f JOIN media m ON m.id = f.media_id WHERE f.person_id = ? "
        "AND m.status = 'ok' GROUP BY m.id ORDER BY MAX(f.w * f.h) DESC, m.id", (person_id,))]


def person_faces(conn: sqlite3.Connection, person_id: int, limit: int = 1000) -> list[tuple]:
    """(face id, media id, path, x, y, w, h, source) of a person's faces, largest first."""
    return [(fid, media_id, from_db(path), x, y, w, h, source) for fid, media_id, path, x, y, w, h, source in
            conn.execute("SELECT f.id, m.id, m.path, f.x, f.y, f.w, f.h, f.source FROM faces f "
                         "JOIN media m ON m.id = f.media_id WHERE f.person_id = ? AND m.status = 'ok' "
                         "ORDER BY f.w * f.h DESC, f.id LIMIT ?", (person_id, limit))]


def face_row(conn: sqlite3.Connection, face_id: int) -> tuple | None:
    """(media id, path, x, y, w, h, person id) of one face, or None."""
    row = conn.execute("SELECT f.media_id, m.path, f.x, f.y, f.w, f.h, f.person_id FROM faces f "
                       "JOIN media m ON m.id = f.media_id WHERE f.id = ?", (face_id,)).fetchone()
    return None if row is None else (row[0], from_db(row[1]), *row[2:])


def set_person_name(conn: sqlite3.Connection, person_id: int, name: str | None, name_key: str | None) -> None:
    conn.execute("UPDATE people SET name = ?, name_key = ? WHERE id = ?", (name, name_key, person_id))


def set_person_hidden(conn: sqlite3.Connection, person_id: int, hidden: bool) -> None:
    conn.execute("UPDATE people SET hidden = ? WHERE id = ?", (int(hidden), person_id))


def people_named(conn: sqlite3.Connection, name_key: str) -> list[int]:
    """People whose case-folded name is ``name_key`` among those ``people_rows`` lists (live, with a face in
    a readable photo): a name held by no one a person can see is not taken."""
    return [r[0] for r in conn.execute(
        "SELECT p.id FROM people p WHERE p.name_key = ? AND p.merged_into IS NULL AND EXISTS (SELECT 1 FROM faces f "
        "JOIN media m ON m.id = f.media_id AND m.status = 'ok' WHERE f.person_id = p.id) ORDER BY p.id", (name_key,))]


def release_name(conn: sqlite3.Connection, name_key: str, keep_id: int) -> None:
    """Take the name ``name_key`` away from every person row but ``keep_id``: the rows no list shows (merged
    away, or left without faces) must not answer to it once someone else has it."""
    conn.execute("UPDATE people SET name = NULL, name_key = NULL WHERE name_key = ? AND id != ?", (name_key, keep_id))


def merge_people(conn: sqlite3.Connection, source_id: int, target_id: int) -> None:
    """Every face of ``source_id`` goes to ``target_id``; the source row remembers where (merged_into)."""
    # a merge is a person's decision: the moved faces are theirs now (source 'user'), so that a regrouping
    # pass never takes them out again
    conn.execute("UPDATE faces SET person_id = ?, source = 'user' WHERE person_id = ?", (target_id, source_id))
    conn.execute("UPDATE people SET merged_into = ?, centroid = NULL WHERE id = ?", (target_id, source_id))
    conn.execute("UPDATE people SET merged_into = ? WHERE merged_into = ?", (target_id, source_id))
    update_centroids(conn, [target_id])


def move_face(conn: sqlite3.Connection, face_id: int, person_id: int) -> None:
    """Put one face in ``person_id`` by hand (source 'user': the grouping leaves it there)."""
    old = conn.execute("SELECT person_id FROM faces WHERE id = ?", (face_id,)).fetchone()
    conn.execute("UPDATE faces SET person_id = ?, source = 'user' WHERE id = ?", (person_id, face_id))
    update_centroids(conn, [person_id, old[0] if old else None])


def forget_person(conn: sqlite3.Connection, person_id: int) -> int:
    """Delete a person's faces (their vectors with them) and the person; the photos stay. Faces found in
    those photos later start new people. Returns how many faces were deleted. The people merged into this
    one go too: their faces were this person's, and set free they came back as faceless people that
    nothing lists, still holding their names."""
    deleted = conn.execute("DELETE FROM faces WHERE person_id = ?", (person_id,)).rowcount
    conn.execute("DELETE FROM people WHERE merged_into = ? OR id = ?", (person_id, person_id))
    return deleted


def named_people(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """(id, name) of every live named person, for finding names in a query."""
    return conn.execute("SELECT id, name FROM people WHERE name IS NOT NULL AND merged_into IS NULL "
                        "ORDER BY id").fetchall()


def person_media_ids(conn: sqlite3.Connection, person_ids: list[int], where: str, params: list,
                     limit: int) -> list[int]:
    """Readable media holding a face of every one of ``person_ids`` and passing ``where``, largest faces
    first."""
    if not person_ids:
        return []
    clauses = " AND ".join("EXISTS (SELECT 1 FROM faces x WHERE x.media_id = m.id AND x.person_id = ?)"
                           for _ in person_ids)
    return [r[0] for r in conn.execute(
        f"SELECT m.id FROM media m JOIN faces f ON f.media_id = m.id WHERE m.status = 'ok' AND {clauses} "
        f"AND {where} GROUP BY m.id ORDER BY MAX(f.w * f.h) DESC, m.id LIMIT ?", [*person_ids, *params, limit])]


def auto_face_vectors(conn: sqlite3.Connection) -> list[tuple[int, int, np.ndarray]]:
    """(face id, person id, vector) of every face the grouping placed (source 'auto') that has a vector."""
    return [(fid, pid, blob_to_vector(vector)) for fid, pid, vector in conn.execute(
        "SELECT f.id, f.person_id, f.vector FROM faces f JOIN people p ON p.id = f.person_id "
        "WHERE f.source = 'auto' AND f.vector IS NOT NULL AND p.merged_into IS NULL ORDER BY f.id")]


def reassign_face(conn: sqlite3.Connection, face_id: int, person_id: int) -> None:
    """Move a face the grouping placed to another person (still source 'auto')."""
    conn.execute("UPDATE faces SET person_id = ? WHERE id = ? AND source = 'auto'", (person_id, face_id))


# -- browsing: the library itself, newest first --------------------------------------------------------


def browse_media(conn: sqlite3.Connection, where: str, params: list, limit: int = -1, offset: int = 0,
                 per: str | None = None) -> list[tuple]:
    """The readable media passing ``where`` (a ``Filters.where()`` clause on ``m``) newest first by capture
    time (EXIF, else the file's modification time): a page of ``(id, date)`` rows (``limit``/``offset``), or
    with ``per`` (a strftime pattern: "%Y", "%Y-%m", "%Y-%m-%d") ``(period, items)`` in the same order,
    periods in local time and ``None`` for undated items (last)."""
    date = MEDIA_DATE_SQL
    if per is not None:
        return conn.execute(
            f"SELECT strftime(?, {date}, 'unixepoch', 'localtime') AS period, COUNT(*) FROM media m "
            f"WHERE m.status = 'ok' AND {where} GROUP BY period ORDER BY period IS NULL, period DESC",
            [per, *params]).fetchall()
    return conn.execute(
        f"SELECT m.id, {date} AS date FROM media m WHERE m.status = 'ok' AND {where} "
        "ORDER BY date IS NULL, date DESC, m.id DESC LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
