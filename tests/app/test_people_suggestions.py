"""People suggestions: "Is this Grace?" for a face of an unnamed person near a named one and "Same
person?" for two unnamed people near each other; asking changes nothing, a "Yes" applies it, a "No" is
remembered (also by a library opened again), and the CLI answers them by number. Identity vectors are made up
as in tests/app/test_people.py."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from test_people import add_media, box, identity, store

from app.cli import main
from app.library import Library
from app.library.face_grouping import JOIN_DISTANCE
from app.library.people import People
from app.library.people_suggestions import SUGGEST_DISTANCE


def person_of(people: People, name: str) -> int:
    return next(p.id for p in people.list(min_photos=1) for f in people.faces(p.id) if f.path.endswith(name))


@pytest.fixture
def scene(library):
    """Grace (named, three photos); a face of hers too far to have joined (a person of its own); two unnamed
    pieces of another person; and a stranger far from everyone."""
    people = People(library)
    for i in range(3):
        store(library, add_media(library, f"grace{i}.jpg"), (box(), identity(1, 0.1, i)))
    people.name(person_of(people, "grace0.jpg"), "Grace")
    store(library, add_media(library, "grace_far.jpg"), (box(), identity(1, 0.55, 20)))
    store(library, add_media(library, "piece_a.jpg"), (box(), identity(2)))
    store(library, add_media(library, "piece_b.jpg"), (box(), identity(2, 0.55, 30)))
    store(library, add_media(library, "stranger.jpg"), (box(), identity(3)))
    return people


def test_suggestions_ask_and_change_nothing_until_answered(library, scene):
    people = scene
    before = [(p.id, p.name, p.photos) for p in people.list(min_photos=1)]
    assert len(before) == 5  # the far face and the two pieces did not join anyone
    found = people.suggestions()
    assert {(s.kind, s.question()) for s in found} == {("face", "Is this Grace?"), ("same", "Same person?")}
    assert all(JOIN_DISTANCE <= s.distance < SUGGEST_DISTANCE for s in found)
    face = next(s for s in found if s.kind == "face")
    assert face.person_id == person_of(people, "grace0.jpg") and people.face(face.subject).path.endswith("grace_far.jpg")
    same = next(s for s in found if s.kind == "same")
    assert {same.subject, same.person_id} == {person_of(people, "piece_a.jpg"), person_of(people, "piece_b.jpg")}
    assert [(p.id, p.name, p.photos) for p in people.list(min_photos=1)] == before  # a suggestion is only a question
    assert people.suggestions(limit=1) == found[:1]

    people.reject(face)
    assert [s.kind for s in people.suggestions()] == ["same"]
    reopened = Library(library.db.path)  # the "No" is stored, not kept in memory
    try:
        assert [s.kind for s in People(reopened).suggestions()] == ["same"]
    finally:
        reopened.close()
    merged = people.accept(same)
    assert merged.photos == 2 and people.suggestions() == []


def test_accepting_a_face_puts_it_with_the_named_person_as_placed_by_you(library, scene):
    people = scene
    grace = person_of(people, "grace0.jpg")
    face = next(s for s in people.suggestions() if s.kind == "face")
    assert people.accept(face).id == grace and people.get(grace).photos == 4
    placed = next(f for f in people.faces(grace) if f.id == face.subject)
    assert placed.source == "user"
    assert [s.kind for s in people.suggestions()] == ["same"]


def test_hidden_and_far_people_are_not_suggested(library, scene):
    people = scene
    people.hide(person_of(people, "piece_a.jpg"))
    people.hide(person_of(people, "grace0.jpg"))
    assert people.suggestions() == []
    vectors = np.stack([identity(seed) for seed in (1, 2, 3)])
    assert np.linalg.norm(vectors[0] - vectors[2]) > SUGGEST_DISTANCE  # the stranger is far from everyone


def test_cots_people_suggestions_lists_accepts_and_rejects_by_number(library, scene, capsys):
    db = str(library.db.path)

    def cots(*argv):
        capsys.readouterr()
        status = main(["people", "suggestions", *argv, "--db", db])
        return status, capsys.readouterr().out

    status, out = cots()
    lines = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert status == 0 and len(lines) == 2 and "--accept N" in out
    listed = json.loads(cots("--json")[1])
    assert [re.match(r"\s*\d+\s+(.+?\?)", line).group(1) for line in lines] == [s["question"] for s in listed]
    status, out = cots("--reject", "1")
    assert status == 0 and f"{listed[0]['question']} No: not asked again" in out
    assert json.loads(cots("--json")[1]) == listed[1:]
    status, out = cots("--accept", "1")
    assert status == 0 and "photos" in out
    assert json.loads(cots("--json")[1]) == [] and "no suggestions" in cots()[1]
    status, _ = cots("--accept", "5")
    assert status == 2


@pytest.mark.parametrize("sqlite3_program", [True, False])
def test_a_repaired_library_keeps_its_rejections(library, scene, monkeypatch, sqlite3_program):
    """A "No" is a person's answer like a name: `cots repair` copies it, so the question is not asked again."""
    import shutil

    from test_damaged_library import _zero_root_page

    from app.library.repair import repair_library

    if not sqlite3_program:
        monkeypatch.setattr(shutil, "which", lambda name: None)  # the row-by-row salvage
    face = next(s for s in scene.suggestions() if s.kind == "face")
    scene.reject(face)
    path = library.db.path
    library.close()
    _zero_root_page(path, "scan_errors")  # damage elsewhere (an empty table): the salvage copies every table
    report = repair_library(path)
    assert report.damaged and report.rows["people_rejections"] == 1
    with Library(path) as repaired:
        assert [s.kind for s in People(repaired).suggestions()] == ["same"]
