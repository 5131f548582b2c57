"""People end to end through the real `cots` CLI with the real faces signal (dlib's detectors, landmarks and
face-recognition ResNet from `face-recognition-models`) on real photos (tests/data/people: two photos of
Barack Obama taken on different days, one of Joe Biden; plus the repository's photos without people): the two
photos of one person become one person, naming it makes both findable by the name, and bad input gets one
line. The fake encoder stands in for the search model: the faces are what is tested."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

pytestmark = [pytest.mark.real_signals, pytest.mark.timeout(300)]
DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def album(tmp_path) -> Path:
    root = tmp_path / "album"
    root.mkdir()
    shutil.copy(DATA / "people" / "obama.jpg", root / "IMG_0001.jpg")
    shutil.copy(DATA / "people" / "biden.jpg", root / "IMG_0002.jpg")
    # the other photo of Obama, stored on its side with "rotate 90 clockwise" in EXIF (as phones do)
    stored = Image.open(DATA / "people" / "obama2.jpg").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(root / "IMG_0003.jpg", exif=exif, quality=90)
    shutil.copy(DATA / "real_photos" / "coffee.jpg", root / "IMG_0004.jpg")
    return root



def test_two_photos_of_one_person_become_one_person_findable_by_name(album, cots):
    assert cots("index", str(album), "--quiet")[0] == 0
    status, out, _ = cots("people", "--json")
    assert status == 0
    people = json.loads(out)
    assert len(people) == 1  # Biden is in one photo only: listed with --all
    obama = people[0]
    assert sorted(os.path.basename(p) for p in obama["photo_paths"]) == ["IMG_0001.jpg", "IMG_0003.jpg"]
    everyone = json.loads(cots("people", "--json", "--all")[1])
    assert sorted(len(p["photo_paths"]) for p in everyone) == [1, 2]

    status, out, _ = cots("people", "name", str(obama["id"]), "Barack")
    assert status == 0 and "Barack" in out
    status, out, _ = cots("search", "Barack", "--json")  # written as named: the person
    assert status == 0
    hits = json.loads(out)
    assert sorted(os.path.basename(h["path"]) for h in hits) == ["IMG_0001.jpg", "IMG_0003.jpg"]
    assert all("person" in h["matched"] for h in hits)
    # a name and other words: her photos ranked by the rest; --person filters
    hits = json.loads(cots("search", "Barack portrait", "--json", "--all")[1])
    assert {os.path.basename(h["path"]) for h in hits} == {"IMG_0001.jpg", "IMG_0003.jpg"}
    hits = json.loads(cots("search", "a photo", "--person", "barack", "--json", "--all")[1])
    assert {os.path.basename(h["path"]) for h in hits} == {"IMG_0001.jpg", "IMG_0003.jpg"}
    assert json.loads(cots("status", "--json")[1])["people"] == {"people": 2, "named": 1}
    assert "people    2 (1 named" in cots("status")[1]


def test_people_commands_answer_bad_input_in_one_line(album, cots):
    assert cots("index", str(album), "--quiet")[0] == 0
    everyone = json.loads(cots("people", "--json", "--all")[1])
    obama = next(p for p in everyone if len(p["photo_paths"]) == 2)
    biden = next(p for p in everyone if len(p["photo_paths"]) == 1)
    for argv, expected in (
            (("people", "name", "999", "Anna"), "there is no person 999"),
            (("people", "name", str(obama["id"]), "x" * 500), "at most 100 characters"),
            (("search", "photo", "--person", "Nobody"), "no person is named 'Nobody'"),
            (("people", "move", "999", "--to", "new"), "there is no face 999")):
        status, out, err = cots(*argv)
        errors = [line for line in err.splitlines() if line.startswith("cots: error:")]
        assert status == 2 and len(errors) == 1 and expected in errors[0] and "Traceback" not in err
    assert cots("people", "merge", str(biden["id"]), str(obama["id"]))[0] == 0
    status, _, err = cots("people", "name", str(biden["id"]), "Joe")  # merged meanwhile: says into whom
    assert status == 2 and f"merged into person {obama['id']}" in err
    status, out, _ = cots("people", "forget", str(obama["id"]))
    assert status == 0 and "3 faces deleted" in out
    assert json.loads(cots("people", "--json", "--all")[1]) == []
    assert cots("search", "photo", "--json", "--all")[0] == 0  # the photos stay searchable
