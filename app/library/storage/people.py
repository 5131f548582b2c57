"""Faces, their identity vectors, and the people they are grouped into: the SQL only. How a new face is
grouped (nearest centroid, a person's own placements kept) is ``app.library.people``'s. Faces a person
placed (source 'user') and names are never changed by the grouping. ``people.merged_into`` keeps a merged
person's row, so that a command naming it can say where it went."""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import numpy as np

from app.library.db import blob_to_vector, id_chunks, vector_to_blob
from app.library.pathtext import from_db


def face_rows(conn: sqlite3.Connection, media_id: int) -> list[tuple]:
    """(id, x, y, w, h, person id, source, at_s) of one photo's (or video's) faces."""
    return conn.execute("SELECT id, x, y, w, h, person_id, source, at_s FROM faces WHERE media_id = ?",
                        (media_id,)).fetchall()


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


def set_centroid(conn: sqlite3.Connection, person_id: int, centroid: np.ndarray) -> None:
    conn.execute("UPDATE people SET centroid = ? WHERE id = ?", (vector_to_blob(centroid), person_id))


def identified_face_count(conn: sqlite3.Connection, person_id: int) -> int:
    """How many of a person's faces have an identity vector (the ones their centroid is the mean of)."""
    return conn.execute("SELECT COUNT(*) FROM faces WHERE person_id = ? AND vector IS NOT NULL",
                        (person_id,)).fetchone()[0]


def add_face(conn: sqlite3.Connection, media_id: int, box, vector: np.ndarray | None, person_id: int | None,
             source: str, now: float) -> None:
    """One face of a photo or video: its ``box`` (a ``signals.Box``; a video's carries its frame's second,
    ``at_s``), identity vector (None: too small) and person."""
    conn.execute("INSERT INTO faces(media_id, x, y, w, h, score, vector, person_id, source, created_at, at_s) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (media_id, box.x, box.y, box.w, box.h, box.score,
                  None if vector is None else vector_to_blob(vector), person_id, source, now,
                  getattr(box, "at_s", None)))


def delete_faces(conn: sqlite3.Connection, media_ids: list[int]) -> None:
    """Forget the faces found in these rows (the people they belonged to keep their other faces)."""
    for chunk, marks in id_chunks(media_ids):
        people = [r[0] for r in conn.execute(
            f"SELECT DISTINCT person_id FROM faces WHERE media_id IN ({marks})", chunk)]
        # a "No" to a face goes with it: SQLite may give its id to a new face later
        conn.execute(f"DELETE FROM people_rejections WHERE kind = 'face' AND a IN "
                     f"(SELECT id FROM faces WHERE media_id IN ({marks}))", chunk)
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
    """(face id, media id, path, x, y, w, h, source, at_s) of a person's faces, largest first."""
    return [(fid, media_id, from_db(path), x, y, w, h, source, at_s)
            for fid, media_id, path, x, y, w, h, source, at_s in
            conn.execute("SELECT f.id, m.id, m.path, f.x, f.y, f.w, f.h, f.source, f.at_s FROM faces f "
                         "JOIN media m ON m.id = f.media_id WHERE f.person_id = ? AND m.status = 'ok' "
                         "ORDER BY f.w * f.h DESC, f.id LIMIT ?", (person_id, limit))]


def face_row(conn: sqlite3.Connection, face_id: int) -> tuple | None:
    """(media id, path, x, y, w, h, person id, at_s) of one face, or None."""
    row = conn.execute("SELECT f.media_id, m.path, f.x, f.y, f.w, f.h, f.person_id, f.at_s FROM faces f "
                       "JOIN media m ON m.id = f.media_id WHERE f.id = ?", (face_id,)).fetchone()
    return None if row is None else (row[0], from_db(row[1]), *row[2:])


def person_moments(conn: sqlite3.Connection, person_ids: list[int], media_ids: list[int]) -> dict[int, list]:
    """media id -> [(person id, second, weight)] of these people's faces in these videos (faces with a frame
    time), the largest, most confident first (weight: the box's area times its score)."""
    out: dict[int, list] = {}
    if not person_ids:
        return out
    people = ",".join("?" * len(person_ids))
    for chunk, marks in id_chunks(media_ids):
        for media_id, person_id, at_s, weight in conn.execute(
                f"SELECT media_id, person_id, at_s, w * h * score FROM faces WHERE at_s IS NOT NULL "
                f"AND person_id IN ({people}) AND media_id IN ({marks}) ORDER BY w * h * score DESC, at_s",
                (*person_ids, *chunk)):
            out.setdefault(media_id, []).append((person_id, at_s, weight))
    return out


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
    conn.execute("DELETE FROM people_rejections WHERE kind = 'face' AND a IN "
                 "(SELECT id FROM faces WHERE person_id = ?)", (person_id,))
    deleted = conn.execute("DELETE FROM faces WHERE person_id = ?", (person_id,)).rowcount
    conn.execute("DELETE FROM people WHERE merged_into = ? OR id = ?", (person_id, person_id))
    return deleted


def named_people(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    """(id, name) of every live named person, for finding names in a query."""
    return conn.execute("SELECT id, name FROM people WHERE name IS NOT NULL AND merged_into IS NULL "
                        "ORDER BY id").fetchall()


def auto_face_vectors(conn: sqlite3.Connection) -> list[tuple[int, int, np.ndarray]]:
    """(face id, person id, vector) of every face the grouping placed (source 'auto') that has a vector."""
    return [(fid, pid, blob_to_vector(vector)) for fid, pid, vector in conn.execute(
        "SELECT f.id, f.person_id, f.vector FROM faces f JOIN people p ON p.id = f.person_id "
        "WHERE f.source = 'auto' AND f.vector IS NOT NULL AND p.merged_into IS NULL ORDER BY f.id")]


def reassign_face(conn: sqlite3.Connection, face_id: int, person_id: int) -> None:
    """Move a face the grouping placed to another person (still source 'auto')."""
    conn.execute("UPDATE faces SET person_id = ? WHERE id = ? AND source = 'auto'", (person_id, face_id))


def mergeable_people(conn: sqlite3.Connection) -> tuple[list[int], np.ndarray, list[int]]:
    """(ids, centroids [n, 128], face counts) of the people a regrouping may merge whole: live, unnamed, not
    hidden, with a centroid, and holding no face a person placed (a person's decision stays as it is)."""
    rows = conn.execute(
        "SELECT p.id, p.centroid, (SELECT COUNT(*) FROM faces f WHERE f.person_id = p.id) FROM people p "
        "WHERE p.merged_into IS NULL AND p.centroid IS NOT NULL AND p.name IS NULL AND p.hidden = 0 "
        "AND NOT EXISTS (SELECT 1 FROM faces u WHERE u.person_id = p.id AND u.source = 'user') ORDER BY p.id").fetchall()
    if not rows:
        return [], np.zeros((0, 128), np.float32), []
    return [r[0] for r in rows], np.stack([blob_to_vector(r[1]) for r in rows]), [r[2] for r in rows]


def absorb_person(conn: sqlite3.Connection, source_id: int, target_id: int) -> None:
    """The grouping's own merge: every face of ``source_id`` goes to ``target_id`` and stays the grouping's
    (source 'auto', unlike ``merge_people``); the source row remembers where it went."""
    conn.execute("UPDATE faces SET person_id = ? WHERE person_id = ?", (target_id, source_id))
    conn.execute("UPDATE people SET merged_into = ?, centroid = NULL WHERE id = ?", (target_id, source_id))
    conn.execute("UPDATE people SET merged_into = ? WHERE merged_into = ?", (target_id, source_id))
    update_centroids(conn, [target_id])


def suggestion_centroids(conn: sqlite3.Connection) -> list[tuple[int, str | None, np.ndarray]]:
    """(id, name, centroid) of the live people shown in the list who have a centroid (hidden ones left out):
    whom a suggestion may name."""
    return [(pid, name, blob_to_vector(centroid)) for pid, name, centroid in conn.execute(
        "SELECT id, name, centroid FROM people WHERE merged_into IS NULL AND hidden = 0 AND centroid IS NOT NULL "
        "ORDER BY id")]


def unnamed_face_vectors(conn: sqlite3.Connection) -> list[tuple[int, int, np.ndarray]]:
    """(face id, person id, vector) of the faces with a vector in readable photos that belong to a live,
    unnamed, not hidden person: the faces a suggestion may ask about."""
    return [(fid, pid, blob_to_vector(vector)) for fid, pid, vector in conn.execute(
        "SELECT f.id, f.person_id, f.vector FROM faces f JOIN people p ON p.id = f.person_id "
        "JOIN media m ON m.id = f.media_id AND m.status = 'ok' WHERE f.vector IS NOT NULL "
        "AND p.merged_into IS NULL AND p.name IS NULL AND p.hidden = 0 ORDER BY f.id")]


def rejections(conn: sqlite3.Connection) -> set[tuple[str, int, int]]:
    """(kind, a, b) of every suggestion a person answered "No" to."""
    return set(conn.execute("SELECT kind, a, b FROM people_rejections").fetchall())


def add_rejection(conn: sqlite3.Connection, kind: str, a: int, b: int, now: float) -> None:
    conn.execute("INSERT OR IGNORE INTO people_rejections(kind, a, b, created_at) VALUES (?, ?, ?, ?)",
                 (kind, a, b, now))
