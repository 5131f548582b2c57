"""`cots people` through the CLI on a library whose faces are stored with made-up identity vectors (the
grouping is what is tested; tests/app/test_people_e2e.py runs the real faces signal): the list order and
counts."""
from __future__ import annotations

import json
import re

import pytest
from test_people import add_media, box, identity, store

from app.cli import main
from app.library.people import People


@pytest.fixture
def cots(library, capsys):
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
