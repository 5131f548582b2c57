"""People: faces grouped into people as they are stored, and a person's decisions (names, merges, moves,
hides, forgets) kept; bad names, unknown and merged ids refused in one line. Identity vectors here are made
up (the grouping is what is tested); tests/app/test_people_e2e.py runs the real models on real photos."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from app.library.face_grouping import store_faces
from app.library.people import MAX_NAME_LENGTH, People, PeopleError, PhotoFace, match_face_boxes, split_names
from app.library.signals.base import Box

JOIN = 0.5


def add_media(library, name: str) -> int:
    with library.db.transaction() as conn:
        folder = conn.execute("INSERT OR IGNORE INTO folders(path, added_at) VALUES ('/photos', 0)").lastrowid
        folder = conn.execute("SELECT id FROM folders WHERE path = '/photos'").fetchone()[0] or folder
        return conn.execute("INSERT INTO media(path, folder_id, name, kind, status) VALUES (?, ?, ?, 'image', 'ok') "
                            "RETURNING id", (f"/photos/{name}", folder, name)).fetchone()[0]


def identity(seed: int, noise: float = 0.0, noise_seed: int = 0) -> np.ndarray:
    """A made-up person's identity vector (length ~1, as dlib's are); ``noise`` moves it by about that much."""
    base = np.random.default_rng(seed).normal(size=128)
    base = base / np.linalg.norm(base)
    jitter = np.random.default_rng(1000 + noise_seed).normal(size=128)
    return (base + noise * jitter / np.linalg.norm(jitter)).astype(np.float32)


def box(x: float = 0.3) -> Box:
    return Box(x, 0.2, 0.2, 0.25, 0.9, label="face")


def store(library, media_id: int, *faces: tuple[Box, np.ndarray | None]) -> None:
    with library.db.transaction() as conn:
        store_faces(conn, media_id, [b for b, _ in faces], [v for _, v in faces], JOIN, 1.0)


@pytest.fixture
def people(library) -> People:
    return People(library)


def photos_of(people: People, person_id: int) -> list[str]:
    return sorted(p.rsplit("/", 1)[1] for p in people.photos(person_id))


def test_close_faces_join_one_person_and_a_far_face_starts_another(library, people):
    anna = [add_media(library, f"anna{i}.jpg") for i in range(3)]
    for i, media_id in enumerate(anna):
        store(library, media_id, (box(), identity(1, 0.3, i)))  # pairwise ~0.42 apart: one person
    bob = add_media(library, "bob.jpg")
    store(library, bob, (box(), identity(2)))  # ~1.4 from Anna
    listed = people.list(min_photos=1)
    assert [p.photos for p in listed] == [3, 1]
    assert photos_of(people, listed[0].id) == ["anna0.jpg", "anna1.jpg", "anna2.jpg"]
    assert photos_of(people, listed[1].id) == ["bob.jpg"]
    assert [p.id for p in people.list()] == [listed[0].id]  # by default one-photo people are left out


def test_two_faces_in_one_photo_and_a_face_too_small_to_recognise(library, people):
    media_id = add_media(library, "pair.jpg")
    store(library, media_id, (box(0.1), identity(1)), (box(0.6), identity(2)), (box(0.85), None))
    listed = people.list(min_photos=1)
    assert len(listed) == 2 and all(p.faces == 1 for p in listed)
    row = library.db.conn.execute("SELECT COUNT(*), COUNT(vector), COUNT(person_id) FROM faces").fetchone()
    assert row == (3, 2, 2)  # the small face is kept (its box) but belongs to no one


def test_naming_makes_the_name_findable_and_refuses_bad_names(library, people):
    media_id = add_media(library, "a.jpg")
    store(library, media_id, (box(), identity(1)))
    person = people.list(min_photos=1)[0]
    named = people.name(person.id, '  Zoë "Zee"   O\'Neil 🌸 ')
    assert named.name == 'Zoë "Zee" O\'Neil 🌸'
    assert people.find("zoë \"zee\" o'neil 🌸") == [person.id]
    assert people.name(person.id, "🌸").name == "🌸" and people.find("🌸") == [person.id]
    with pytest.raises(PeopleError, match=f"at most {MAX_NAME_LENGTH} characters; this one has 500"):
        people.name(person.id, "a" * 500)
    with pytest.raises(PeopleError, match="control characters"):
        people.name(person.id, "Anna\nrm -rf")
    with pytest.raises(PeopleError, match="visible character"):
        people.name(person.id, "   ")
    assert people.get(person.id).name == "🌸"  # refused names changed nothing


def test_a_second_person_cannot_take_a_name_in_use(library, people):
    for name, seed in (("a.jpg", 1), ("b.jpg", 2)):
        store(library, add_media(library, name), (box(), identity(seed)))
    first, second = (p.id for p in people.list(min_photos=1))
    people.name(first, "Anna")
    with pytest.raises(PeopleError, match=f"person {first} is already named 'Anna'.*merge {second} {first}"):
        people.name(second, "anna")


def test_naming_a_face_names_its_unnamed_person_or_moves_it(library, people):
    # photo 1: a face of A (who is also in photo 2) and of B; photo 3: a face too small to recognise
    one, two, three = (add_media(library, f"{i}.jpg") for i in (1, 2, 3))
    store(library, one, (box(0.1), identity(1)), (box(0.6), identity(2)))
    store(library, two, (box(), identity(1, 0.1, 1)))
    store(library, three, (box(), None))
    face_a, face_b = people.photo_faces(one)
    [small] = people.photo_faces(three)
    a, b = face_a.person_id, face_b.person_id
    assert face_a.label() == f"unnamed person {a}" and small.label() == "unrecognised face"
    # a new name on an unnamed person names that person, with all their faces; nothing moves
    assert people.name_face(face_a.id, " Grace ").id == a
    assert people.get(a).name == "Grace" and people.get(a).faces == 2
    assert people.photo_faces(one)[0] == PhotoFace(face_a.id, face_a.box, a, "Grace")
    # a name someone has (any case) moves the face to them; their name stays as written
    assert people.name_face(face_b.id, "grace").id == a
    assert people.get(a).faces == 3 and people.get(a).name == "Grace" and people.get(b).faces == 0
    # the same name again changes nothing
    assert people.name_face(face_b.id, "GRACE").id == a and people.get(a).faces == 3
    # a new name on a named person's face moves that face alone to a new person of that name
    hopper = people.name_face(face_b.id, "Grace Hopper")
    assert hopper.id not in (a, b) and hopper.name == "Grace Hopper" and hopper.faces == 1
    assert people.get(a).faces == 2 and people.get(a).name == "Grace"
    # a face in no person goes to a new person of that name
    ada = people.name_face(small.id, "Ada")
    assert ada.name == "Ada" and [f.id for f in people.faces(ada.id)] == [small.id]
    with pytest.raises(PeopleError, match="visible character"):
        people.name_face(face_a.id, "  ")
    with pytest.raises(PeopleError, match="there is no face 999"):
        people.name_face(999, "Bob")


def test_drawn_boxes_are_matched_to_the_faces_they_show():
    left, right = PhotoFace(1, (0.1, 0.2, 0.2, 0.25), 7, None), PhotoFace(2, (0.6, 0.2, 0.2, 0.25), 8, "Bo")
    assert match_face_boxes([(0.6, 0.2, 0.2, 0.25), (0.11, 0.21, 0.2, 0.25), (0.4, 0.7, 0.1, 0.1)],
                            [left, right]) == [right, left, None]
    assert match_face_boxes([(0.1, 0.2, 0.2, 0.25)] * 2, [left]) == [left, None]  # a face answers one box


def test_merge_moves_faces_keeps_the_name_and_merged_ids_say_where_they_went(library, people):
    for name, seed in (("a.jpg", 1), ("b.jpg", 2), ("c.jpg", 3)):
        store(library, add_media(library, name), (box(), identity(seed)))
    a, b, c = sorted(p.id for p in people.list(min_photos=1))
    people.name(a, "Anna")
    merged = people.merge(a, b)  # b had no name: it takes Anna's
    assert merged.name == "Anna" and merged.photos == 2 and photos_of(people, b) == ["a.jpg", "b.jpg"]
    with pytest.raises(PeopleError, match=f"person {a} was merged into person {b} \\(Anna\\): use {b}"):
        people.name(a, "Someone")
    people.merge(b, c)
    with pytest.raises(PeopleError, match=f"person {a} was merged into person {c}"):  # followed through b
        people.get(a)
    with pytest.raises(PeopleError, match="there is no person 999"):
        people.merge(999, c)
    with pytest.raises(PeopleError, match="into itself"):
        people.merge(c, c)


def test_a_moved_face_stays_where_it_was_put_when_its_photo_is_read_again(library, people):
    ids = [add_media(library, f"p{i}.jpg") for i in range(3)]
    for i, media_id in enumerate(ids):
        store(library, media_id, (box(), identity(1, 0.3, i)))
    person = people.list()[0]
    face = next(f for f in people.faces(person.id) if f.path.endswith("p2.jpg"))
    moved_to = people.move(face.id, "new")
    assert moved_to.id != person.id and photos_of(people, moved_to.id) == ["p2.jpg"]
    store(library, ids[2], (box(0.31), identity(1, 0.3, 2)))  # the faces signal reads p2.jpg again
    assert photos_of(people, moved_to.id) == ["p2.jpg"] and photos_of(people, person.id) == ["p0.jpg", "p1.jpg"]
    with pytest.raises(PeopleError, match="there is no face 12345"):
        people.move(12345, person.id)


def test_hide_and_forget(library, people):
    ids = [add_media(library, f"p{i}.jpg") for i in range(2)]
    for media_id in ids:
        store(library, media_id, (box(), identity(1)))
    person = people.list()[0]
    people.hide(person.id)
    assert people.list() == [] and people.list(include_hidden=True)[0].hidden
    people.hide(person.id, False)
    assert people.forget(person.id) == 2
    assert people.list(include_hidden=True, min_photos=1) == []
    assert library.db.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 0
    assert library.db.conn.execute("SELECT COUNT(*) FROM media").fetchone()[0] == 2  # the photos stay
    with pytest.raises(PeopleError, match=f"there is no person {person.id}"):
        people.get(person.id)


def test_removing_a_photo_removes_its_faces(library, people):
    ids = [add_media(library, f"p{i}.jpg") for i in range(2)]
    for media_id in ids:
        store(library, media_id, (box(), identity(1)))
    person = people.list()[0]
    library.delete_media([ids[0]])
    assert photos_of(people, person.id) == ["p1.jpg"]
    assert library.db.conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 1
    library.delete_media([ids[1]])
    assert people.list(include_hidden=True, min_photos=1) == []


def test_two_writers_at_once_lose_no_face(library, people):
    ids = [add_media(library, f"p{i}.jpg") for i in range(40)]
    errors = []

    def write(part: list[int]) -> None:
        try:
            for i in part:
                store(library, i, (box(), identity(i % 2, 0.2, i)))  # two people, interleaved
        except Exception as error:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(ids[k::2],)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert library.db.conn.execute("SELECT COUNT(*), COUNT(person_id) FROM faces").fetchone() == (40, 40)
    assert sorted(p.photos for p in people.list()) == [20, 20]


def test_names_are_found_in_a_query_as_whole_words():
    named = [(1, "Anna"), (2, "Anna Maria"), (3, "🌸"), (4, "Bob")]
    assert split_names("Anna at the beach", named) == ("at the beach", [(1, "Anna")])
    assert split_names("ANNA MARIA beach", named) == ("beach", [(2, "Anna Maria")])
    assert split_names("Annabel", named) == ("Annabel", [])
    assert split_names("🌸 and Bob", named) == ("and", [(3, "🌸"), (4, "Bob")])


def test_a_name_is_a_person_only_when_written_with_its_capitals_and_never_quoted():
    named = [(1, "Rose"), (2, "May"), (3, "Anna Maria"), (4, "van Gogh"), (5, 'Zoë "Zee" O\'Neil')]
    assert split_names("Rose at the beach", named) == ("at the beach", [(1, "Rose")])
    assert split_names("rose garden", named) == ("rose garden", [])  # the word
    assert split_names('"Rose" garden', named) == ('"Rose" garden', [])  # quoted: the word
    assert split_names("\u201cRose\u201d garden with May", named) == ("Rose garden with", [(2, "May")])
    assert split_names("flowers in may", named) == ("flowers in may", [])
    assert split_names("Anna maria", named) == ("Anna maria", [])  # every capital of the name counts
    assert split_names("Van Gogh sunflowers", named) == ("sunflowers", [(4, "van Gogh")])  # lower in the name: any
    assert split_names("van gogh", named) == ("van gogh", [])
    assert split_names('Zoë "Zee" O\'Neil skiing', named) == ("skiing", [(5, 'Zoë "Zee" O\'Neil')])


def test_regroup_moves_only_faces_the_grouping_placed(library, people):
    from app.library.storage.people import update_centroids

    anna_ids = [add_media(library, f"anna{i}.jpg") for i in range(5)]
    for i, media_id in enumerate(anna_ids):
        store(library, media_id, (box(), identity(1, 0.2, i)))
    bob_ids = [add_media(library, f"bob{i}.jpg") for i in range(2)]
    for i, media_id in enumerate(bob_ids):
        store(library, media_id, (box(), identity(2, 0.2, 10 + i)))
    anna, bob = (p.id for p in people.list())
    assert photos_of(people, anna)[0].startswith("anna")
    faces = {f.path.rsplit("/", 1)[1]: f.id for f in people.faces(anna)}
    with library.db.transaction() as conn:  # an early mistake of the incremental grouping, by hand
        conn.execute("UPDATE faces SET person_id = ? WHERE id = ?", (bob, faces["anna0.jpg"]))
        update_centroids(conn, [anna, bob])
    people.move(faces["anna1.jpg"], bob)  # a person's decision: stays where it was put
    assert people.regroup().to_dict() == {"people_merged": 0, "faces_merged": 0, "faces_moved": 1}
    assert photos_of(people, anna) == ["anna0.jpg", "anna2.jpg", "anna3.jpg", "anna4.jpg"]
    assert photos_of(people, bob) == ["anna1.jpg", "bob0.jpg", "bob1.jpg"]
    assert people.regroup().faces_moved == 0  # settled


def test_close_pairs_are_the_pairs_within_the_distance_nearest_first():
    from app.library.face_grouping import close_pairs

    rng = np.random.default_rng(0)
    centroids = (rng.normal(size=(40, 128)) * 0.04).astype(np.float32)  # pairwise ~0.57, some nearer
    brute = sorted((float(np.linalg.norm(centroids[i] - centroids[j])), i, j)
                   for i in range(40) for j in range(i + 1, 40)
                   if np.linalg.norm(centroids[i] - centroids[j]) < 0.55)
    found = close_pairs(centroids, 0.55, chunk=7)  # chunks that do not divide the rows
    assert 0 < len(found) < 40 * 39 // 2
    assert [(i, j) for _, i, j in found] == [(i, j) for _, i, j in brute]
    assert np.allclose([d for d, _, _ in found], [d for d, _, _ in brute], atol=1e-5)


@pytest.mark.parametrize("box", [(0.4, 0.0, 0.2, 0.2), (0.0, 0.8, 0.2, 0.2), (0.45, 0.45, 0.1, 0.1)])
def test_a_face_crop_stays_inside_its_photo(tmp_path, box):
    """A face near the photo's edge is cut with the square slid inside the photo, not padded black past the
    edge (the People view showed a black band above a face at the top of a portrait)."""
    from PIL import Image

    from app.library.people import face_crop

    Image.new("RGB", (300, 400), (200, 180, 160)).save(tmp_path / "portrait.jpg")
    crop = np.asarray(face_crop(str(tmp_path / "portrait.jpg"), box, size=64, margin=1.5))
    assert crop.shape == (64, 64, 3) and crop.min() > 100
