"""`cots people` through the CLI on a library whose faces are stored with made-up identity vectors (the
grouping is what is tested; tests/app/test_people_e2e.py runs the real faces signal): the list order and
counts, `cots search` with a name that is also a word (a person only when written with its capital, never
when quoted), and `cots people regroup` merging whole unnamed people."""
from __future__ import annotations

import json
import re

import pytest
from fakes import fake_encoder, run_indexer, solid
from test_people import add_media, box, identity, store

from app.cli import main
from app.library.face_grouping import store_faces
from app.library.people import People, PeopleError


@pytest.fixture
def cots(library, capsys, monkeypatch):
    from app.library.encoder import Encoder

    encoder = fake_encoder()
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    db = str(library.db.path)

    def run(*argv: str) -> tuple[int, str]:
        capsys.readouterr()
        status = main([*argv, "--db", db])
        return status, capsys.readouterr().out

    return run


def add_person(library, seed: int, photos: int, noise: float = 0.1) -> None:
    for i in range(photos):
        store(library, add_media(library, f"s{seed}_{i}.jpg"), (box(), identity(seed, noise, 100 * seed + i)))


def test_people_are_listed_named_first_then_by_photos_with_their_counts(library, cots):
    add_person(library, 1, 2)
    add_person(library, 2, 5)
    add_person(library, 3, 3)
    add_person(library, 4, 1)  # one photo: only with --all
    people = People(library)
    ids = {p.photos: p.id for p in people.list(min_photos=1)}
    people.name(ids[2], "Grace")
    status, out = cots("people")
    assert status == 0
    rows = [re.match(r"\s*(\d+)\s+(.+?)\s+(\d+) photos?", line).groups() for line in out.splitlines()]
    assert rows == [(str(ids[2]), "Grace", "2"), (str(ids[5]), f"person {ids[5]}", "5"),
                    (str(ids[3]), f"person {ids[3]}", "3")]
    listed = json.loads(cots("people", "--json", "--all")[1])
    assert [(p["id"], p["photos"]) for p in listed] == [(ids[2], 2), (ids[5], 5), (ids[3], 3), (ids[1], 1)]


def test_a_name_that_is_a_word_filters_only_when_written_with_its_capital(library, cots, tmp_path):
    folder = tmp_path / "garden"
    folder.mkdir()
    for name, colour in (("rose garden.jpg", "red"), ("her1.jpg", "green"), ("her2.jpg", "blue")):
        solid(colour).save(folder / name)
    library.add_folder(folder)
    run_indexer(library, fake_encoder())
    ids = {path.rsplit("/", 1)[1]: media_id for path, media_id in
           library.db.conn.execute("SELECT path, id FROM media").fetchall()}
    for i, name in enumerate(("her1.jpg", "her2.jpg")):
        with library.db.transaction() as conn:
            store_faces(conn, ids[name], [box()], [identity(1, 0.1, i)], 0.5, 1.0)
    People(library).name(People(library).list()[0].id, "Rose")

    def found(query: str) -> dict[str, list[str]]:
        status, out = cots("search", query, "--json", "--all")
        assert status == 0
        return {hit["path"].rsplit("/", 1)[1]: hit["matched"] for hit in json.loads(out)}

    as_named = found("Rose")  # capitalised as named: her photos only
    assert set(as_named) == {"her1.jpg", "her2.jpg"} and all("person" in m for m in as_named.values())
    for query in ("rose", '"Rose"', "rose garden"):  # the word: the photo named so first, no person filter
        hits = found(query)
        assert next(iter(hits)) == "rose garden.jpg" and "name" in hits["rose garden.jpg"], query
        assert not any("person" in m for m in hits.values()), query
    assert set(found("Rose garden")) == {"her1.jpg", "her2.jpg"}  # her photos, ranked by "garden"


def split_store(library, seed: int, photos: int, noise: float = 0.15) -> list[int]:
    """``photos`` photos of one made-up person, each stored as a person of its own (a join distance no two
    faces meet), as early mistakes of the incremental grouping leave them; their media ids."""
    ids = []
    for i in range(photos):
        ids.append(add_media(library, f"s{seed}_{i}.jpg"))
        with library.db.transaction() as conn:
            store_faces(conn, ids[-1], [box()], [identity(seed, noise, 100 * seed + i)], 0.01, 1.0)
    return ids


def test_regroup_merges_close_unnamed_people_but_never_named_hidden_or_placed_ones(library, cots):
    people = People(library)
    split_store(library, 1, 4)  # one person in four pieces: they become one
    for seed in (2, 3, 4):  # a named, a hidden and a hand-placed person, each beside an unnamed piece of them
        split_store(library, seed, 2)
    pieces = {seed: sorted(p.id for p in people.list(min_photos=1)
                           if any(f.path.rsplit("/", 1)[1].startswith(f"s{seed}_") for f in people.faces(p.id)))
              for seed in (1, 2, 3, 4)}
    assert [len(pieces[seed]) for seed in (1, 2, 3, 4)] == [4, 2, 2, 2]
    people.name(pieces[2][0], "Grace")
    people.hide(pieces[3][0])
    face = people.faces(pieces[4][0])[0].id
    placed = people.move(face, "new").id  # a person's decision: that face's new person stays apart
    before = {p.id: p.photos for p in people.list(include_hidden=True, min_photos=1)}

    status, out = cots("people", "regroup")
    assert status == 0 and out.strip() == ("3 unnamed people merged into a nearer one (3 faces), "
                                           "0 faces moved to a nearer person")
    after = {p.id: p.photos for p in people.list(include_hidden=True, min_photos=1)}
    survivor = next(pid for pid in pieces[1] if pid in after)
    assert after[survivor] == 4 and not set(pieces[1]) - {survivor} & set(after)
    for pid in (*pieces[2], *pieces[3], pieces[4][1], placed):  # Grace, the hidden one, the placed one: apart
        assert after[pid] == before[pid] == 1
    assert all(f.source == "auto" for f in people.faces(survivor))  # still the grouping's: regroup may move them
    assert json.loads(cots("people", "regroup", "--json")[1]) == {"people_merged": 0, "faces_merged": 0,
                                                                  "faces_moved": 0}
    absorbed = next(pid for pid in pieces[1] if pid != survivor)  # its id says where it went
    with pytest.raises(PeopleError, match=f"person {absorbed} was merged into person {survivor}"):
        people.get(absorbed)
