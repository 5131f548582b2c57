"""Stored embeddings: one per media row, per video segment and per text (captions, the vocabulary), each
kind with its own vector index (``KIND_TABLES``), and the texts they embed."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from app.library.db import blob_to_vector, id_chunks, vector_to_blob

# Embedding kinds, each with its own vector index: media (one per image/video), segment (video frames, for
# timestamps), text (captions and vocabulary, for image -> text); their table and id column.
KIND_TABLES = {"media": "embeddings", "segment": "segments", "text": "text_embeddings"}
KIND_ID_COLUMNS = {"media": "media_id", "segment": "id", "text": "text_id"}


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


def delete_model_vectors(conn: sqlite3.Connection, model_id: str) -> None:
    """Delete one model's embeddings, segments and text embeddings (after a switch to another model)."""
    for table in KIND_TABLES.values():
        conn.execute(f"DELETE FROM {table} WHERE model_id = ?", (model_id,))


def embedding(conn: sqlite3.Connection, media_id: int, model_id: str | None) -> np.ndarray | None:
    """One row's embedding by ``model_id`` (a copy), or None."""
    row = conn.execute("SELECT vector FROM embeddings WHERE media_id = ? AND model_id = ?",
                       (media_id, model_id)).fetchone()
    return blob_to_vector(row[0]).copy() if row else None


def stored_vectors(conn: sqlite3.Connection, kind: str, model_id: str, ids: list[int],
                   max_gen: int | None = None) -> list[tuple[int, bytes]]:
    """(id, vector blob) of these ids of one embedding kind (only those written by generation ``max_gen``
    or before, when given)."""
    id_column = KIND_ID_COLUMNS[kind]
    rows: list[tuple[int, bytes]] = []
    # "+gen": never the (model_id, gen) index, which would scan every row of the model; the primary key finds ids
    scope, scope_args = ("", ()) if max_gen is None else (" AND +gen IS NOT NULL AND +gen <= ?", (max_gen,))
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


def unchanged_since(conn: sqlite3.Connection, kind: str, model_id: str, generation: int, count: int) -> bool:
    """Whether one embedding kind's rows are still those of a saved index: ``count`` of them and none written
    after ``generation`` (every write stamps the generation it commits in, so an addition or a replacement
    shows as a newer row, and a deletion as a lower count). Lookups on the (model_id, gen) index."""
    table = KIND_TABLES[kind]
    newer = conn.execute(f"SELECT EXISTS(SELECT 1 FROM {table} WHERE model_id = ? AND gen > ?) "
                         f"OR EXISTS(SELECT 1 FROM {table} WHERE model_id = ? AND gen IS NULL)",
                         (model_id, generation, model_id)).fetchone()[0]
    if newer:
        return False
    return conn.execute(f"SELECT count(*) FROM {table} WHERE model_id = ?", (model_id,)).fetchone()[0] == count


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


def embedded_by_kind(conn: sqlite3.Connection, model_id: str | None) -> dict[str, int]:
    """kind -> readable rows ``model_id`` has embedded."""
    return dict(conn.execute(
        "SELECT m.kind, COUNT(*) FROM media m JOIN embeddings e ON e.media_id = m.id AND e.model_id = ? "
        "WHERE m.status = 'ok' GROUP BY m.kind", (model_id,)).fetchall())


def unembedded_count(conn: sqlite3.Connection, model_id: str) -> int:
    """Readable media rows ``model_id`` has not embedded yet."""
    return conn.execute(
        "SELECT COUNT(*) FROM media m LEFT JOIN embeddings e ON e.media_id = m.id AND e.model_id = ? "
        "WHERE m.status = 'ok' AND e.media_id IS NULL", (model_id,)).fetchone()[0]


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


def segment_starts(conn: sqlite3.Connection, media_id: int, model_id: str | None) -> list[float]:
    """The seconds a video's frames were sampled at when it was embedded (its segments' starts) for
    ``model_id``, else for any model that embedded it; [] when none did."""
    for scope, args in ((" AND model_id = ?", (media_id, model_id)), ("", (media_id,))):
        starts = [r[0] for r in conn.execute(
            f"SELECT DISTINCT start_s FROM segments WHERE media_id = ?{scope} ORDER BY start_s", args)]
        if starts:
            return starts
    return []


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


def texts_by_id(conn: sqlite3.Connection, text_ids: list[int]) -> dict[int, tuple[str, str, int | None]]:
    """text id -> (text, source, media id)."""
    if not text_ids:
        return {}
    marks = ",".join("?" * len(text_ids))
    return {text_id: (text, source, media_id) for text_id, text, source, media_id in conn.execute(
        f"SELECT id, text, source, media_id FROM texts WHERE id IN ({marks})", text_ids)}


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
