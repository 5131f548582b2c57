"""How faces become people: the grouping policy the faces signal's results go through (``store_faces``).

Grouping is incremental: each new face joins the person whose centroid is nearest (``nearest_person``) if
that is closer than ``JOIN_DISTANCE``, else it starts a new person, and a joined person's centroid moves as a
running mean; nothing is re-clustered (``app.library.people.People.regroup`` refines on demand with
``merge_close_people``), and faces placed by a person (``source = 'user'``), names, merges and hides are
never undone by it. A video's faces are thinned first (``keep_video_faces``). The SQL is
``app.library.storage.people``'s.
"""
from __future__ import annotations

import sqlite3

import numpy as np

from app.library.storage import people as people_store

# Euclidean distance between a new face's identity vector and a person's centroid under which the face
# joins that person. dlib documents 0.6 for two faces; a centroid sits nearer its own faces than they sit to
# each other, and on bench/faces_identity.py's real photos 0.5 kept every person whole while 0.6 let a
# false box join a real person (bench/RESULTS.md, "People: identity").
JOIN_DISTANCE = 0.5
# A face found again where a person had placed one (their boxes overlap by more than this, intersection over
# union) is the same face: it stays with that person.
SAME_FACE_IOU = 0.5
# A video's faces (one set per sampled frame, a frame every 2 s: up to 32 frames of up to 40 faces) would
# flood a person's faces with near-copies. Per video, the faces are first grouped among themselves as photos
# are grouped (nearest within JOIN_DISTANCE), then each of those groups keeps its best-scoring face per
# VIDEO_FACE_WINDOW_S seconds, and the video keeps at most MAX_VIDEO_FACES (each group's best first, then
# each one's second best, ...): a 1-minute clip of two people gives 12 faces, a crowd one face per person.
VIDEO_FACE_WINDOW_S = 10.0
MAX_VIDEO_FACES = 20


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def nearest_person(centroids: np.ndarray, vector: np.ndarray, join_distance: float) -> int | None:
    """The row of ``centroids`` [n, 128] nearest ``vector`` (Euclidean) when it lies within ``join_distance``,
    else None: whom a face joins."""
    if not len(centroids):
        return None
    distances = np.linalg.norm(centroids - vector, axis=1)
    nearest = int(np.argmin(distances))
    return nearest if distances[nearest] < join_distance else None


def close_pairs(centroids: np.ndarray, join_distance: float, chunk: int = 512) -> list[tuple[float, int, int]]:
    """(distance, i, j), i < j, of the rows of ``centroids`` closer than ``join_distance``, nearest first
    (computed a chunk of rows at a time, so thousands of people need no n x n matrix at once)."""
    pairs = []
    squares = np.einsum("ij,ij->i", centroids, centroids)
    for start in range(0, len(centroids), chunk):
        block = centroids[start:start + chunk]
        distances = np.sqrt(np.maximum(squares[start:start + chunk, None] + squares[None, :]
                                       - 2 * block @ centroids.T, 0))
        for i, j in zip(*np.nonzero(distances < join_distance)):
            if start + i < j:
                pairs.append((float(distances[i, j]), int(start + i), int(j)))
    return sorted(pairs)


def merge_close_people(conn: sqlite3.Connection) -> tuple[int, int]:
    """Merge the unnamed people ``mergeable_people`` lists whose centroids lie within ``JOIN_DISTANCE``,
    nearest pairs first, each person once a round, until no pair is left (a merged centroid moves). Returns
    (people merged, faces now in another person: a face moved twice counts once)."""
    merged = faces = 0
    own: dict[int, int] = {}  # person id -> their faces before the first merge
    while True:
        ids, centroids, sizes = people_store.mergeable_people(conn)
        own = own or dict(zip(ids, sizes))
        done: set[int] = set()
        for _, i, j in close_pairs(centroids, JOIN_DISTANCE):
            if i in done or j in done:
                continue
            source, target = (i, j) if sizes[i] <= sizes[j] else (j, i)
            people_store.absorb_person(conn, ids[source], ids[target])
            faces += own.get(ids[source], 0)
            merged += 1
            done |= {i, j}
        if not done:
            return merged, faces


def keep_video_faces(boxes: list, vectors: list, window_s: float = VIDEO_FACE_WINDOW_S,
                     max_faces: int = MAX_VIDEO_FACES, join_distance: float = JOIN_DISTANCE) -> list[int]:
    """Which of a video's faces (``boxes`` in frame order, each with its ``at_s``, and their identity
    ``vectors``) to keep, as indices in that order: see ``VIDEO_FACE_WINDOW_S``. Faces without a vector form
    one group of their own, kept after the others."""
    groups: list[int] = []  # per face, its group within the video (-1: no vector)
    centroids = np.zeros((0, 128), np.float32)
    sizes: list[int] = []
    for vector in vectors:
        if vector is None:
            groups.append(-1)
            continue
        nearest = nearest_person(centroids, vector, join_distance)
        if nearest is None:
            centroids = np.vstack([centroids, np.asarray(vector, np.float32)[None]])
            sizes.append(1)
            nearest = len(sizes) - 1
        else:
            sizes[nearest] += 1
            centroids[nearest] += (vector - centroids[nearest]) / sizes[nearest]
        groups.append(nearest)
    best: dict[tuple[int, int], int] = {}  # (group, window) -> the face kept there
    for i, (box, group) in enumerate(zip(boxes, groups)):
        key = (group, int((box.at_s or 0.0) // window_s))
        if key not in best or box.score > boxes[best[key]].score:
            best[key] = i
    ranked = []  # (rank within its group, no vector, -score, index)
    for group in dict.fromkeys(groups):
        faces = sorted((i for (g, _), i in best.items() if g == group), key=lambda i: -boxes[i].score)
        ranked += [(rank, group == -1, -boxes[i].score, i) for rank, i in enumerate(faces)]
    return sorted(i for *_, i in sorted(ranked)[:max_faces])


def _same_face(box, row: tuple) -> bool:
    """Whether a face found now is a stored face (``face_rows``' row): the same frame, boxes overlapping."""
    at_s, old_at_s = getattr(box, "at_s", None), row[7]
    same_frame = at_s == old_at_s or (at_s is not None and old_at_s is not None and abs(at_s - old_at_s) < 1e-3)
    return same_frame and box_iou((box.x, box.y, box.w, box.h), row[1:5]) > SAME_FACE_IOU


def store_faces(conn: sqlite3.Connection, media_id: int, boxes: list, vectors: list,
                join_distance: float = JOIN_DISTANCE, now: float | None = None) -> None:
    """Replace one photo's faces (``boxes`` with their identity ``vectors``, None for a face too small) and
    group each into a person (see the module docstring), inside the caller's transaction. A face where a
    person had placed one before (``SAME_FACE_IOU``) keeps that person: re-reading a photo never undoes a
    person's decision. A joined person's centroid moves as a running mean (no re-read of their other faces).
    A video's faces (boxes with ``at_s``) are first thinned (``keep_video_faces``), then grouped the same way."""
    now = now or 0.0
    if any(getattr(box, "at_s", None) is not None for box in boxes):
        keep = keep_video_faces(boxes, vectors)
        boxes, vectors = [boxes[i] for i in keep], [vectors[i] for i in keep]
    old = people_store.face_rows(conn, media_id)
    people_store.delete_faces(conn, [media_id])  # a photo read again: its old faces no longer count
    person_ids, centroids = people_store.live_centroids(conn)
    for box, vector in zip(boxes, vectors):
        kept = next((row for row in old if row[6] == "user" and row[5] is not None and _same_face(box, row)), None)
        person_id, source = (kept[5], "user") if kept else (None, "auto")
        if person_id is None and vector is not None:
            nearest = nearest_person(centroids, vector, join_distance)
            if nearest is not None:
                person_id = person_ids[nearest]
            else:
                person_id = people_store.new_person(conn, now)
                person_ids.append(person_id)
                centroids = np.vstack([centroids, np.zeros((1, centroids.shape[1]), np.float32)])
        if person_id is not None and vector is not None and person_id in person_ids:
            count = people_store.identified_face_count(conn, person_id)
            index = person_ids.index(person_id)
            centroids[index] = centroids[index] + (vector - centroids[index]) / (count + 1)
            people_store.set_centroid(conn, person_id, centroids[index])
        people_store.add_face(conn, media_id, box, vector, person_id, source, now)
        if person_id is not None and vector is not None and person_id not in person_ids:
            people_store.update_centroids(conn, [person_id])  # a person's own placement into someone without a centroid
