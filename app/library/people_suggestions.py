"""Suggestions for the people list, as the photo apps make them: "Is this Grace?" for a face of an unnamed
person that lies near a named person, and "Same person?" for two unnamed people near each other, both
within ``SUGGEST_DISTANCE``. A suggestion is only a question: nothing changes until a person answers it
(``People.accept`` applies it, ``People.reject`` remembers the "No" so that it is not asked again). The SQL
is in ``app.library.storage.people``."""
from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass

import numpy as np

from app.library.face_grouping import JOIN_DISTANCE, close_pairs
from app.library.storage import people as people_store

# How far past the join distance a face or a person is still worth a question. On bench/faces_identity.py's
# real photos, same-person faces were 0.25-0.44 apart and different people 0.65 or more: 1.3 x 0.5 = 0.65
# asks about the gap between, where a person's answer decides (bench/RESULTS.md, "People: identity").
SUGGEST_DISTANCE = 1.3 * JOIN_DISTANCE


@dataclass(frozen=True)
class Suggestion:
    """One question. ``kind`` "face": is face ``subject`` the named person ``person_id``? "same": are the
    unnamed people ``subject`` and ``person_id`` one person?"""

    kind: str
    subject: int  # a face id ("face") or a person id ("same")
    person_id: int
    name: str | None  # the named person's name ("face")
    distance: float

    def question(self) -> str:
        return f"Is this {self.name}?" if self.kind == "face" else "Same person?"

    def key(self) -> tuple[str, int, int]:
        """What a rejection remembers (a pair of people in either order is one pair)."""
        if self.kind == "face":
            return self.kind, self.subject, self.person_id
        return self.kind, min(self.subject, self.person_id), max(self.subject, self.person_id)

    def to_dict(self) -> dict:
        return {**asdict(self), "question": self.question()}


def find_suggestions(conn: sqlite3.Connection, limit: int) -> list[Suggestion]:
    """The ``limit`` nearest questions not answered "No" before: for each unnamed person, their face
    nearest a named person; and pairs of unnamed people. Reads only."""
    people = people_store.suggestion_centroids(conn)
    rejected = people_store.rejections(conn)
    named = [(pid, name, centroid) for pid, name, centroid in people if name]
    unnamed = [(pid, centroid) for pid, name, centroid in people if not name]
    found = _face_questions(conn, named, rejected)
    if len(unnamed) > 1:
        ids = [pid for pid, _ in unnamed]
        for distance, i, j in close_pairs(np.stack([c for _, c in unnamed]), SUGGEST_DISTANCE):
            suggestion = Suggestion("same", ids[i], ids[j], None, round(distance, 4))
            if suggestion.key() not in rejected:
                found.append(suggestion)
    return sorted(found, key=lambda s: (s.distance, s.kind, s.subject))[:limit]


def _face_questions(conn: sqlite3.Connection, named: list, rejected: set) -> list[Suggestion]:
    """"Is this NAME?" for the face of each unnamed person that lies nearest a named person."""
    if not named:
        return []
    centroids = np.stack([c for _, _, c in named])
    best: dict[int, Suggestion] = {}  # unnamed person -> their face nearest a named person
    for face_id, person_id, vector in people_store.unnamed_face_vectors(conn):
        distances = np.linalg.norm(centroids - vector, axis=1)
        for index in np.argsort(distances):
            if distances[index] >= SUGGEST_DISTANCE:
                break
            suggestion = Suggestion("face", face_id, named[index][0], named[index][1], round(float(distances[index]), 4))
            if suggestion.key() not in rejected:
                if person_id not in best or suggestion.distance < best[person_id].distance:
                    best[person_id] = suggestion
                break
    return list(best.values())
