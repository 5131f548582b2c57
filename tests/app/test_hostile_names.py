"""Hostile file names: bytes that are not UTF-8, control characters, newlines (docs/HOSTILE_INPUTS.md)."""
from __future__ import annotations

import json
import os
import sys

import pytest
from fakes import run_indexer, solid

from app.library import Library
from app.library.pathtext import display_text, from_db, to_db

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")


def _bytes_name(folder, raw: bytes):
    return os.path.join(os.fsdecode(folder), os.fsdecode(raw))


def test_path_values_round_trip_and_display():
    name = os.fsdecode(b"/p/img_15\xe9.jpg")
    assert isinstance(to_db(name), bytes) and from_db(to_db(name)) == name
    assert to_db("/p/caf\u00e9.jpg") == "/p/caf\u00e9.jpg"  # valid UTF-8 stays text: old libraries unchanged
    assert display_text(name) == "/p/img_15\\xe9.jpg"
    assert display_text("a\nb\x1b[31m\u202e.jpg") == "a\\nb\\x1b[31m\\u202e.jpg"


def test_a_non_utf8_name_is_indexed_and_shown(tmp_path, encoder, capsys, monkeypatch):
    root = tmp_path / "lib"
    root.mkdir()
    for i in range(3):
        solid("green").save(root / f"plain{i}.jpg")
    latin1 = _bytes_name(root, b"img_15\xe9.jpg")
    solid("red").save(latin1, format="JPEG")
    folder = _bytes_name(root, b"Sch\xf6ne Tage")
    os.mkdir(folder)
    solid("blue").save(os.path.join(folder, "a.jpg"))
    newline = os.path.join(str(root), "two\nlines.jpg")
    solid("yellow").save(newline, format="JPEG")
    db = tmp_path / "lib.db"
    with Library(db) as library:
        library.add_folder(root)
        report = run_indexer(library, encoder)
        assert report.failed == 0 and report.added == 6
        record = library.media_by_path(latin1)
        assert record is not None and record.path == latin1 and os.path.exists(record.path)
        assert library.media_by_path(os.path.join(folder, "a.jpg")).status == "ok"
        assert run_indexer(library, encoder).unchanged == 6  # stable across runs: no duplicate rows

    from app.cli import main
    from app.library.encoder import Encoder

    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    capsys.readouterr()
    assert main(["search", "red", "--db", str(db), "-k", "6", "--all"]) == 0
    out = capsys.readouterr().out
    assert "img_15\\xe9.jpg" in out and "two\\nlines.jpg" in out and "\n" not in out.split("two")[1][:8]
    assert main(["search", "red", "--db", str(db), "--json", "--all"]) == 0
    paths = {h["path"] for h in json.loads(capsys.readouterr().out)}
    assert latin1 in paths  # JSON keeps the exact name (as a \udcXX escape): it opens the file again
    assert main(["search", "Schöne", "--db", str(db), "--json", "--all"]) == 0  # names are searchable
    assert any(p.startswith(folder) for p in (h["path"] for h in json.loads(capsys.readouterr().out)))
    assert main(["status", "--db", str(db)]) == 0
    assert "indexed   6" in capsys.readouterr().out
    assert main(["forget", folder, "--db", str(db), "--yes"]) == 0
    capsys.readouterr()
    assert main(["status", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["indexed"] == 5
