"""People in a library: the faces the faces signal found, grouped into people that a person can name,
merge, split, hide and forget. The CLI (``app/cli/people.py``) and the GUI call this layer; the grouping
policy is ``app.library.face_grouping``'s, the SQL ``app.library.storage.people``'s and the schema
``app.library.db``'s. Faces placed by a person (``source = 'user'``), names, merges and hides are never
undone by the grouping.
"""
from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import asdict, dataclass

from app.library.errors import LibraryError
from app.library.face_grouping import (
    JOIN_DISTANCE,
    SAME_FACE_IOU,
    box_iou,
    merge_close_people,
    nearest_person,
)
from app.library.library import Library
from app.library.pathtext import display_text
from app.library.people_suggestions import find_suggestions
from app.library.storage import people as people_store
from app.library.storage.people import PersonRow

MAX_NAME_LENGTH = 100  # characters; longer names are refused (a name, not a note)


class PeopleError(LibraryError):
    """A people command that cannot be done as asked (unknown id, a person merged meanwhile, a bad name)."""


@dataclass
class Person:
    id: int
    name: str | None
    hidden: bool
    faces: int
    photos: int
    face_id: int | None  # a representative face (the largest, most confident)
    media_id: int | None

    def label(self) -> str:
        return self.name if self.name else f"person {self.id}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Face:
    id: int
    media_id: int
    path: str
    box: tuple[float, float, float, float]  # x, y, w, h in fractions of the photo (a video's: of its frame)
    source: str  # auto | user
    at_s: float | None = None  # a video's face: the second of its frame (None: a photo's face)


@dataclass
class PhotoFace:
    """One face of a photo and whose it is: what the detail pane's face box names or moves."""

    id: int
    box: tuple[float, float, float, float]  # x, y, w, h in fractions of the photo
    person_id: int | None  # None: a face too small to recognise, in no person
    name: str | None  # the person's name; None: unnamed

    def label(self) -> str:
        """"Grace", "unnamed person 7", or "unrecognised face" (in no person)."""
        if self.person_id is None:
            return "unrecognised face"
        return self.name or f"unnamed person {self.person_id}"


@dataclass
class Regrouped:
    """What ``People.regroup`` changed."""

    people_merged: int  # unnamed people merged whole into another
    faces_merged: int  # the faces those people took with them
    faces_moved: int  # single faces moved to a nearer person

    def to_dict(self) -> dict:
        return asdict(self)


def name_key(name: str) -> str:
    """How names are compared: NFKC, case-folded, inner white space as one space."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def clean_name(name: str) -> str:
    """A name as stored: trimmed, inner white space as one space; PeopleError for an empty name, one with
    control characters, or one over MAX_NAME_LENGTH characters. Quotes and emoji are fine."""
    if any(unicodedata.category(c) in ("Cc", "Cf") and c not in "\u200c\u200d" for c in name):  # ZWJ: emoji
        raise PeopleError("a name cannot hold control characters (line breaks, tabs, escapes)")
    cleaned = " ".join(unicodedata.normalize("NFC", name).split())
    if not cleaned:
        raise PeopleError("a name needs at least one visible character")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise PeopleError(f"a name is at most {MAX_NAME_LENGTH} characters; this one has {len(cleaned)}")
    return cleaned


class People:
    """The people of one library (thread-safe as ``Library`` is: each thread uses its own connection)."""

    def __init__(self, library: Library):
        self.library = library

    @property
    def _conn(self):
        return self.library.db.conn

    # -- reads ----------------------------------------------------------------------------------
    def list(self, include_hidden: bool = False, min_photos: int = 2) -> list[Person]:
        """People with at least ``min_photos`` photos (named people always), named first, most photos first."""
        return [_person(row) for row in people_store.people_rows(self._conn)
                if (include_hidden or not row.hidden) and (row.name or row.photos >= min_photos)]

    def get(self, person_id: int) -> Person:
        """One live person; PeopleError naming where a merged one went, or that the id is unknown."""
        self._live(person_id)
        rows = people_store.people_rows(self._conn, person_id)
        if not rows:
            return Person(person_id, people_store.person_state(self._conn, person_id)[0], False, 0, 0, None, None)
        return _person(rows[0])

    def photos(self, person_id: int) -> list[str]:
        """Paths of a person's photos and videos (where a face of theirs was found on a sampled frame),
        largest face first."""
        self._live(person_id)
        return [path for _, path in people_store.person_photos(self._conn, person_id)]

    def faces(self, person_id: int, limit: int = 1000) -> list[Face]:
        self._live(person_id)
        return [Face(fid, media_id, path, (x, y, w, h), source, at_s) for fid, media_id, path, x, y, w, h, source, at_s
                in people_store.person_faces(self._conn, person_id, limit)]

    def face(self, face_id: int) -> Face:
        row = people_store.face_row(self._conn, face_id)
        if row is None:
            raise PeopleError(f"there is no face {face_id} (`cots people show ID` lists a person's faces)")
        media_id, path, x, y, w, h, _, at_s = row
        return Face(face_id, media_id, path, (x, y, w, h), "", at_s)

    def photo_faces(self, media_id: int) -> list[PhotoFace]:
        """The faces of one photo, each with its person's id and name (a video's faces, found on its frames,
        are none: the detail pane draws boxes on the photo itself)."""
        faces = []
        for face_id, x, y, w, h, person_id, _, at_s in people_store.face_rows(self._conn, media_id):
            if at_s is not None:
                continue
            state = None if person_id is None else people_store.person_state(self._conn, person_id)
            faces.append(PhotoFace(face_id, (x, y, w, h), person_id, state[0] if state else None))
        return faces

    def find(self, name: str) -> list[int]:
        """Ids of the live people with this name (compared case-folded)."""
        return people_store.people_named(self._conn, name_key(name))

    def named(self) -> list[tuple[int, str]]:
        """(id, name) of every named person."""
        return people_store.named_people(self._conn)

    # -- a person's decisions -------------------------------------------------------------------
    def name(self, person_id: int, name: str | None) -> Person:
        """Name a person (None: take the name away). PeopleError when another person has this name already
        (merge them instead), or the person is unknown or was merged meanwhile."""
        cleaned = None if name is None else clean_name(name)
        with self.library.db.transaction() as conn:
            self._live(person_id, conn)
            if cleaned is not None:
                other = [p for p in people_store.people_named(conn, name_key(cleaned)) if p != person_id]
                if other:
                    taken = people_store.person_state(conn, other[0])[0] or cleaned
                    raise PeopleError(f"person {other[0]} is already named {display_text(taken)!r}: if they are "
                                      f"the same, run `cots people merge {person_id} {other[0]}`")
            if cleaned is not None:
                people_store.release_name(conn, name_key(cleaned), person_id)
            people_store.set_person_name(conn, person_id, cleaned, None if cleaned is None else name_key(cleaned))
        return self.get(person_id)

    def merge(self, source_id: int, target_id: int) -> Person:
        """All of ``source_id``'s faces go to ``target_id``; the target keeps its name (or takes the
        source's when it has none)."""
        if source_id == target_id:
            raise PeopleError(f"person {source_id} cannot be merged into itself")
        with self.library.db.transaction() as conn:
            source_name, _ = self._live(source_id, conn)
            target_name, _ = self._live(target_id, conn)
            people_store.merge_people(conn, source_id, target_id)
            if target_name is None and source_name is not None:
                people_store.set_person_name(conn, target_id, source_name, name_key(source_name))
            people_store.set_person_name(conn, source_id, None, None)  # the name goes with the faces, never stays behind
        return self.get(target_id)

    def move(self, face_id: int, to: int | str) -> Person:
        """Put one face into person ``to`` (an id) or, with ``to="new"``, into a new person of its own."""
        with self.library.db.transaction() as conn:
            if people_store.face_row(conn, face_id) is None:
                raise PeopleError(f"there is no face {face_id} (`cots people show ID` lists a person's faces)")
            if to == "new":
                target = people_store.new_person(conn, time.time())
            else:
                target = int(to)
                self._live(target, conn)
            people_store.move_face(conn, face_id, target)
        return self.get(target)

    def name_face(self, face_id: int, name: str) -> Person:
        """Name the person in one face, as photo apps do, and return whom the face belongs to now:

        - a name someone has already (compared case-folded) moves the face to that person;
        - a new name on a face of an unnamed person names that person (all their faces: the grouping put
          them together), and moves nothing;
        - a new name on a face of a named person (or of no person: too small to recognise) moves the face
          to a new person with that name.

        A moved face counts as placed by you (the grouping leaves it there). PeopleError for a face that is
        gone or a name ``clean_name`` refuses."""
        cleaned = clean_name(name)
        with self.library.db.transaction() as conn:
            row = people_store.face_row(conn, face_id)
            if row is None:
                raise PeopleError(f"there is no face {face_id} (the photo was read again or its person forgotten)")
            current = row[6]
            owners = people_store.people_named(conn, name_key(cleaned))
            if owners:
                target = owners[0]
            elif current is not None and people_store.person_state(conn, current)[0] is None:
                target = current
            else:
                target = people_store.new_person(conn, time.time())
            if target != current:
                people_store.move_face(conn, face_id, target)
            if not owners:
                people_store.release_name(conn, name_key(cleaned), target)
                people_store.set_person_name(conn, target, cleaned, name_key(cleaned))
        return self.get(target)

    def hide(self, person_id: int, hidden: bool = True) -> Person:
        with self.library.db.transaction() as conn:
            self._live(person_id, conn)
            people_store.set_person_hidden(conn, person_id, hidden)
        return self.get(person_id)

    def forget(self, person_id: int) -> int:
        """Delete a person and their faces' identity vectors (the photos stay); how many faces went."""
        with self.library.db.transaction() as conn:
            self._live(person_id, conn)
            return people_store.forget_person(conn, person_id)

    def regroup(self) -> Regrouped:
        """A full pass that refines the incremental grouping. First, unnamed people whose centroids lie
        within ``JOIN_DISTANCE`` of each other are merged whole (the one with fewer faces into the other),
        never a named or hidden person or one holding a face a person placed. Then every face the grouping
        placed (never one a person placed or merged) moves to the person whose centroid is nearest when that
        is another person within ``JOIN_DISTANCE``; centroids are then recomputed. Names, hides and merges
        stay. One transaction: a concurrent indexer waits for it."""
        with self.library.db.transaction() as conn:
            people_merged, faces_merged = merge_close_people(conn)
            moved = 0
            person_ids, centroids = people_store.live_centroids(conn)
            changed = set()
            for face_id, person_id, vector in people_store.auto_face_vectors(conn):
                nearest = nearest_person(centroids, vector, JOIN_DISTANCE)
                if nearest is not None and person_ids[nearest] != person_id:
                    people_store.reassign_face(conn, face_id, person_ids[nearest])
                    changed |= {person_id, person_ids[nearest]}
                    moved += 1
            people_store.update_centroids(conn, changed)
        return Regrouped(people_merged, faces_merged, moved)

    # -- suggestions (app/library/people_suggestions.py) ----------------------------------------------
    def suggestions(self, limit: int = 20):
        """Questions to ask, nearest first (``people_suggestions.Suggestion``): "Is this Grace?" for a face of
        an unnamed person near a named one, "Same person?" for two unnamed people. Nothing is applied."""
        return find_suggestions(self._conn, limit)

    def accept(self, suggestion) -> Person:
        """Apply one: the face goes to the named person (placed by you), or the unnamed person with fewer
        photos is merged into the other."""
        if suggestion.kind == "face":
            return self.move(suggestion.subject, suggestion.person_id)
        first, second = self.get(suggestion.subject), self.get(suggestion.person_id)
        source, target = (first, second) if first.photos <= second.photos else (second, first)
        return self.merge(source.id, target.id)

    def reject(self, suggestion) -> None:
        """Remember the "No": this question is not asked again."""
        with self.library.db.transaction() as conn:
            people_store.add_rejection(conn, *suggestion.key(), time.time())

    # -- helpers --------------------------------------------------------------------------------
    def _live(self, person_id: int, conn=None) -> tuple[str | None, None]:
        """(name, None) of a live person; PeopleError for an unknown id or a merged one (saying into whom)."""
        conn = conn or self._conn
        state = people_store.person_state(conn, person_id)
        if state is None:
            raise PeopleError(f"there is no person {person_id} (`cots people` lists them)")
        seen = {person_id}
        target = state[1]
        while target is not None:  # follow a chain of merges to the person who has the faces now
            further = people_store.person_state(conn, target)
            if further is None or further[1] is None or further[1] in seen:
                break
            seen.add(target)
            target = further[1]
        if target is not None:
            into = people_store.person_state(conn, target)
            label = f"{target} ({display_text(into[0])})" if into and into[0] else str(target)
            raise PeopleError(f"person {person_id} was merged into person {label}: use {target}")
        return state[0], None


def _person(row: PersonRow) -> Person:
    return Person(row.id, row.name, row.hidden, row.faces, row.photos, row.face_id, row.media_id)


QUOTES = '"\u201c\u201d\u201e'  # straight and typographic double quotes: what is between them is words
_QUERY_TOKENS = re.compile(f"[{QUOTES}]|\\w+|[^\\w\\s]")


def name_tokens(text: str) -> list[tuple[str, str, bool]]:
    """(case-folded, as written, quoted) of a text's words as name matching sees them: \\w runs and single
    symbols (an emoji is a word), punctuation (quotes, apostrophes, hyphens) only separating, each with
    whether it stands between double quotes."""
    words, quoted = [], False
    for token in _QUERY_TOKENS.findall(unicodedata.normalize("NFKC", text)):
        if token in QUOTES:
            quoted = not quoted
        elif not unicodedata.category(token[0]).startswith("P"):
            words.append((name_key(token), token, quoted))
    return words


def _stands_for(word: tuple[str, str, bool], part: tuple[str, str, bool]) -> bool:
    """Whether a query word (``name_tokens``) is this word of a name: the same case-folded, starting with a
    capital where the name's word does, and not quoted unless the name quotes it."""
    (folded, written, quoted), (name_folded, name_written, name_quoted) = word, part
    capital_kept = name_written[0] == name_written[0].lower() or written[0] != written[0].lower()
    return folded == name_folded and capital_kept and (name_quoted or not quoted)


def split_names(query: str, named: list[tuple[int, str]]) -> tuple[str, list[tuple[int, str]]]:
    """The people a query names and the query without their names: ("Anna at the beach", [(3, "Anna")]) ->
    ("at the beach", [(3, "Anna")]). A name counts as written as named: its whole words in order, each word
    that the name starts with a capital starting with a capital in the query too (other letters compared
    without case), never between double quotes (unless the name itself quotes that word); longest names first. So with a person named Rose, "Rose at
    the beach" is her photos at the beach, while "rose garden" and '"Rose" garden' are the word."""
    words = name_tokens(query)
    found: list[tuple[int, str]] = []
    used = [False] * len(words)
    for person_id, name in sorted(named, key=lambda item: -len(name_tokens(item[1]))):
        target = name_tokens(name)
        if not target:
            continue
        for start in range(len(words) - len(target) + 1):
            span = range(start, start + len(target))
            if all(_stands_for(words[i], part) and not used[i] for i, part in zip(span, target)):
                for i in span:
                    used[i] = True
                found.append((person_id, name))
                break
    rest = " ".join(w[1] for w, u in zip(words, used) if not u) if found else query
    return rest, found


def face_crop(path: str, box: tuple[float, float, float, float], size: int = 96, margin: float = 0.3,
              at_s: float | None = None):
    """A square PIL image of one face (its box widened by ``margin`` on each side), ``size`` pixels; the photo
    is decoded as the library reads it (EXIF orientation applied, so the box fractions fit). ``at_s``: a
    video's face, cut from its frame at that second. MediaError when the file cannot be read."""
    from PIL import Image

    from cots_core.media import MediaError, read_image, video_frames_at

    if at_s is not None:
        frames = video_frames_at(path, [at_s], long_side=1280)
        if not frames:
            raise MediaError(f"the frame at {at_s:.1f} s cannot be read")
        photo = frames[0][1]
    else:
        photo = read_image(path, target_size=512).frames[0]
    width, height = photo.size
    x, y, w, h = box
    face_side = max(w * width, h * height)
    # the margin only as far as the photo goes: past its edge the crop would be padded black (a face at the top
    # of a portrait got a black band in the People view); the square slides inside the photo instead
    side = max(face_side, min(face_side * (1 + 2 * margin), width, height))
    cx = min(max((x + w / 2) * width, side / 2), width - side / 2) if side <= width else (x + w / 2) * width
    cy = min(max((y + h / 2) * height, side / 2), height - side / 2) if side <= height else (y + h / 2) * height
    crop = photo.crop((round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)))
    return crop.resize((size, size), Image.Resampling.LANCZOS)


def match_face_boxes(boxes: list[tuple[float, float, float, float]],
                     faces: list[PhotoFace]) -> list[PhotoFace | None]:
    """The face of ``faces`` that each (x, y, w, h) box shows: the one it overlaps most, when by more than
    ``SAME_FACE_IOU``; each face answers one box at most (None: no face matches)."""
    free = list(faces)
    matched: list[PhotoFace | None] = []
    for box in boxes:
        best = max(free, key=lambda face: box_iou(box, face.box), default=None)
        if best is not None and box_iou(box, best.box) > SAME_FACE_IOU:
            free.remove(best)
            matched.append(best)
        else:
            matched.append(None)
    return matched
