"""A filter value whose bytes are not UTF-8 (argv holds them as lone surrogates) never ends in the raw codec
message (issue 30).

Before: `cots search x --place caf$'\\xe9'` printed `cots: error: 'utf-8' codec can't encode character
'\\udce9' in position 3: surrogates not allowed` (the value reached SQLite as it was).
"""
from __future__ import annotations

import json
import os
import sqlite3

import pytest
from fakes import solid
from PIL import Image

from app.cli import main
from app.library.encoder import Encoder
from app.library.signals import fact_filters
from app.library.signals.base import AT_LEAST_ONE

LATIN1 = os.fsdecode(b"caf\xe9")  # 'caf\udce9': how Python hands over a Latin-1 terminal's "café"
ODD = "x\ud800y"  # a lone surrogate no terminal byte gives (a caller's own string)


def _value_flags() -> list[str]:
    return ["--kind", "--folder", "--from", "--to", "--person",
            *[f.flag for f in fact_filters() if f.match != AT_LEAST_ONE]]


@pytest.fixture
def library_db(tmp_path, encoder, monkeypatch, capsys):
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *args, **kwargs: encoder))
    root = tmp_path / "p"
    (root / os.fsdecode(b"Sch\xf6n")).mkdir(parents=True)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Cafe", "Model 1"  # camera make and model (EXIF text is ASCII)
    solid("red").save(root / "cafe.jpg", exif=exif)
    solid("blue").save(root / os.fsdecode(b"Sch\xf6n") / "in.jpg")
    db = tmp_path / "lib.db"
    assert main(["index", str(root), "--db", str(db), "--quiet", "--model", "fake"]) == 0
    capsys.readouterr()
    with sqlite3.connect(db) as conn:  # as a camera whose maker writes UTF-8 would be stored
        assert conn.execute("UPDATE signal_facts SET value = 'Café 1' WHERE key = 'camera'").rowcount == 1
    return str(db), root


@pytest.mark.parametrize("flag", _value_flags())
@pytest.mark.parametrize("value", [LATIN1, ODD])
def test_every_filter_value_that_is_not_utf8_is_read_or_refused_in_one_line(library_db, capsys, flag, value):
    db, _ = library_db
    code = main(["search", "photo", flag, value, "--db", db, "--json"])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "codec" not in err and "surrogates" not in err and "internal error" not in err and "Traceback" not in err
    if code == 2:
        errors = [line for line in err.splitlines() if "error" in line]  # argparse's usage lines come first
        assert len(errors) == 1 and ("cots: error" in err or "usage:" in err), err


def test_a_latin1_camera_name_finds_the_utf8_one(library_db, capsys):
    db, _ = library_db
    assert main(["search", "photo", "--all", "--camera", LATIN1, "--db", db, "--json"]) == 0
    found = [os.path.basename(hit["path"]) for hit in json.loads(capsys.readouterr().out)]
    assert found == ["cafe.jpg"]  # read as Latin-1, as file names are: "café"


def test_a_folder_that_is_not_utf8_still_filters(library_db, capsys):
    db, root = library_db
    folder = os.path.join(os.fsdecode(root), os.fsdecode(b"Sch\xf6n"))
    assert main(["search", "photo", "--all", "--folder", folder, "--db", db, "--json"]) == 0
    assert [os.path.basename(hit["path"]) for hit in json.loads(capsys.readouterr().out)] == ["in.jpg"]


@pytest.mark.parametrize("value", [LATIN1, ODD])
def test_a_person_name_that_is_not_utf8_is_one_line(library_db, capsys, value):
    db, _ = library_db
    code = main(["people", "name", "1", value, "--db", db])
    err = capsys.readouterr().err
    assert code == 2 and "no person 1" in err and "codec" not in err, err
