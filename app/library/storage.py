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
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from app.library.db import blob_to_vector, vector_to_blob
from app.library.pathtext import from_db
from app.library.scanner import ScannedFile, ScanResult


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


def upsert_media(conn: sqlite3.Connection, values: dict) -> int:
    """Insert or update the media row of ``values["path"]``; its id."""
    columns = ", ".join(values)
    updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "path")
    return conn.execute(
        f"INSERT INTO media({columns}) VALUES ({', '.join('?' * len(values))}) "
        f"ON CONFLICT(path) DO UPDATE SET {updates} RETURNING id", list(values.values())).fetchone()[0]


def update_media(conn: sqlite3.Connection, media_id: int, values: dict) -> None:
    """Set some columns of one media row."""
    assignments = ", ".join(f"{column} = ?" for column in values)
    conn.execute(f"UPDATE media SET {assignments} WHERE id = ?", (*values.values(), media_id))


def delete_media_data(conn: sqlite3.Connection, media_ids: list[int],
                      model_id: str | None = None) -> tuple[list[int], list[int]]:
    """Delete rows' embeddings and segments (only ``model_id``'s when given) and their caption texts with
    every model's text embeddings; without ``model_id`` also their signal results, facts and boxes. Returns the removed (segment ids, text ids) for the vector indexes."""
    segments: list[int] = []
    texts: list[int] = []
    for start in range(0, len(media_ids), 500):
        chunk = media_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
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


# -- search's reads --------------------------------------------------------------------------


def segment_spans(conn: sqlite3.Connection, media_ids: list[int],
                  model_id: str) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """media id -> (starts, ends, vectors) of its segments for ``model_id``, in time order; a few queries
    for any number of ids."""
    rows: dict[int, list] = {}
    for start in range(0, len(media_ids), 500):
        chunk = media_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
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
    """The ``ids`` whose media row passes ``where`` (a ``Filters.sql()`` clause on ``m``)."""
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
    for start in range(0, len(media_ids), 500):
        chunk = media_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        scope, args = ("", ()) if signal is None else (" AND signal = ?", (signal,))
        for table in ("signal_boxes", "signal_facts", "signal_results"):
            conn.execute(f"DELETE FROM {table} WHERE media_id IN ({marks}){scope}", (*chunk, *args))
        conn.execute(f"UPDATE media SET signal_text = (SELECT group_concat(text, ' ') FROM signal_results r "
                     f"WHERE r.media_id = media.id AND r.text != '') WHERE id IN ({marks})", chunk)


def store_signal_result(conn: sqlite3.Connection, media_id: int, signal: str, version: int, output,
                        error: str | None = None, now: float | None = None) -> None:
    """Replace one (media, signal) result: ``output`` (a ``SignalOutput``) when it read the file, else the
    ``error``. The media row's ``signal_text`` (in the full-text index) is rebuilt from all its signals."""
    conn.execute("DELETE FROM signal_boxes WHERE media_id = ? AND signal = ?", (media_id, signal))
    conn.execute("DELETE FROM signal_facts WHERE media_id = ? AND signal = ?", (media_id, signal))
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
        taken_at = output.facts.get("taken_at")
        if isinstance(taken_at, int | float):  # the date filters read captured_at: EXIF's time when there is one
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
    for start in range(0, len(media_ids), 500):
        chunk = media_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
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


def places(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
    """(city, country, photos) of the library's readable photos with a place, most photos first."""
    return conn.execute(
        "SELECT COALESCE(c.value, ''), COALESCE(n.value, ''), COUNT(*) AS photos FROM media m "
        "JOIN signal_facts n ON n.media_id = m.id AND n.key = 'country' "
        "LEFT JOIN signal_facts c ON c.media_id = m.id AND c.key = 'city' "
        "WHERE m.status = 'ok' GROUP BY 1, 2 ORDER BY photos DESC, 2, 1").fetchall()


def cameras(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """(camera, photos), most photos first."""
    return conn.execute(
        "SELECT f.value, COUNT(*) AS photos FROM signal_facts f JOIN media m ON m.id = f.media_id "
        "WHERE f.key = 'camera' AND m.status = 'ok' GROUP BY 1 ORDER BY photos DESC, 1").fetchall()


def people_candidates(conn: sqlite3.Connection, where: str, params: list, min_faces: int, max_faces: int | None,
                      min_face_area: float, limit: int) -> list[int]:
    """Readable media whose face count is in [min_faces, max_faces] and whose largest face covers at least
    ``min_face_area`` of the image, passing ``where``; the largest faces first."""
    upper, upper_args = ("", []) if max_faces is None else (" AND CAST(f.value AS INTEGER) <= ?", [max_faces])
    return [r[0] for r in conn.execute(
        "SELECT m.id FROM media m JOIN signal_facts f ON f.media_id = m.id AND f.key = 'faces' "
        "LEFT JOIN signal_facts a ON a.media_id = m.id AND a.key = 'face_area_max' "
        f"WHERE m.status = 'ok' AND CAST(f.value AS INTEGER) >= ?{upper} AND COALESCE(a.value, 0) >= ? AND {where} "
        "ORDER BY COALESCE(a.value, 0) DESC, m.id LIMIT ?", [min_faces, *upper_args, min_face_area, *params, limit])]


def browse_media(conn: sqlite3.Connection, where: str, params: list, limit: int = -1, offset: int = 0,
                 per: str | None = None) -> list[tuple]:
    """The readable media passing ``where`` (a ``Filters.sql()`` clause on ``m``) newest first by capture
    time (EXIF, else the file's modification time): a page of ``(id, date)`` rows (``limit``/``offset``), or
    with ``per`` (a strftime pattern: "%Y", "%Y-%m", "%Y-%m-%d") ``(period, items)`` in the same order,
    periods in local time and ``None`` for undated items (last)."""
    date = "COALESCE(m.captured_at, m.mtime_ns / 1e9)"
    if per is not None:
        return conn.execute(
            f"SELECT strftime(?, {date}, 'unixepoch', 'localtime') AS period, COUNT(*) FROM media m "
            f"WHERE m.status = 'ok' AND {where} GROUP BY period ORDER BY period IS NULL, period DESC",
            [per, *params]).fetchall()
    return conn.execute(
        f"SELECT m.id, {date} AS date FROM media m WHERE m.status = 'ok' AND {where} "
        "ORDER BY date IS NULL, date DESC, m.id DESC LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
