"""`cots people` with ids too large to store, and names left behind by merges and forgets (issue 30)."""
from __future__ import annotations

import pytest
from test_people import add_media, box, identity, store

from app.cli import main
from app.library.people import People

HUGE = "99999999999999999999"  # over SQLite's INTEGER: an internal error (OverflowError) before


@pytest.mark.parametrize("argv", [["name", HUGE, "Anna"], ["move", HUGE, "--to", "new"], ["move", "1", "--to", HUGE],
                                  ["merge", HUGE, "1"], ["show", HUGE], ["hide", HUGE], ["forget", HUGE]])
def test_an_id_too_large_to_store_is_one_line(library, capsys, argv):
    library.close()
    assert main(["people", *argv, "--db", str(library.path)]) == 2
    err = capsys.readouterr().err
    assert "is not an id" in err and "internal error" not in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1


def test_a_count_too_large_to_store_is_one_line(tmp_path, capsys):
    assert main(["search", "x", "-k", HUGE, "--db", str(tmp_path / "lib.db")]) == 2
    assert "too large" in capsys.readouterr().err


def _three_people(library) -> list[int]:
    for person in (1, 2, 3):
        for i in range(2):
            store(library, add_media(library, f"p{person}_{i}.jpg"), (box(), identity(person, 0.05, i)))
    ids = sorted(p.id for p in People(library).list(min_photos=1))
    assert len(ids) == 3
    return ids


def test_a_name_left_by_a_merge_and_a_forget_is_free_again(library):
    people = People(library)
    one, two, three = _three_people(library)
    people.name(one, "Anna")
    people.merge(one, two)
    people.forget(two)  # set person 1 free again: faceless, unlisted, still "Anna"
    people.name(three, "Anna")  # was: "person 1 is already named 'Anna'", and no one listed held it
    assert [(p.id, p.name) for p in people.list(include_hidden=True, min_photos=1) if p.name] == [(three, "Anna")]
    assert people.find("anna") == [three]
    with pytest.raises(Exception, match="no person"):
        people.get(one)  # forgotten with the person it was merged into


def test_a_name_whose_faces_all_moved_away_is_free_again(library):
    people = People(library)
    one, two, three = _three_people(library)
    people.name(one, "Bob")
    for face in people.faces(one):
        people.move(face.id, two)
    people.name(three, "Bob")  # person 1 holds no face: nothing lists them, the name is not theirs
    assert [p.id for p in people.list(min_photos=1) if p.name == "Bob"] == [three]
    assert people.named() == [(three, "Bob")]  # the query "Bob" finds person 3's photos only


def test_a_listed_person_keeps_their_name(library):
    people = People(library)
    one, _, three = _three_people(library)
    people.name(one, "Cleo")
    with pytest.raises(Exception, match=f"person {one} is already named 'Cleo'"):
        people.name(three, "cleo")
