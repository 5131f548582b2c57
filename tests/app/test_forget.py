"""`cots forget` refuses what is not in the library, says what it removes, asks, and can be undone."""
from __future__ import annotations

import json

import pytest

from app.cli import main
from app.library.encoder import Encoder


@pytest.fixture
def indexed(tmp_path, photos, encoder, monkeypatch, capsys):
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    db = str(tmp_path / "lib.db")
    assert main(["index", str(photos), "--db", db, "--quiet"]) == 0
    capsys.readouterr()
    return db


def _indexed_count(capsys, db) -> int:
    capsys.readouterr()
    assert main(["status", "--json", "--db", db]) == 0
    return json.loads(capsys.readouterr().out)["indexed"]


@pytest.mark.parametrize("target", ["", "/", "..", "/tmp"])
def test_forget_refuses_what_is_not_in_a_watched_folder(indexed, photos, capsys, target):
    assert main(["forget", target, "--db", indexed, "--yes"]) == 2
    err = capsys.readouterr().err
    assert "watched folders" in err and str(photos) in err and "Traceback" not in err
    assert _indexed_count(capsys, indexed) == 8


def test_forget_without_a_terminal_needs_yes(indexed, photos, capsys):
    assert main(["forget", str(photos), "--db", indexed]) == 2
    err = capsys.readouterr().err
    assert "8 items" in err and "--yes" in err
    assert _indexed_count(capsys, indexed) == 8


def test_forget_asks_on_a_terminal(indexed, photos, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert main(["forget", str(photos / "Paris 2019"), "--db", indexed]) == 1
    assert _indexed_count(capsys, indexed) == 8
    assert main(["forget", str(photos / "Paris 2019"), "--db", indexed]) == 0
    assert "5 items removed" in capsys.readouterr().out
    assert _indexed_count(capsys, indexed) == 3


def test_indexing_the_folder_again_undoes_a_forget(indexed, photos, capsys):
    assert main(["forget", str(photos / "Paris 2019"), "--db", indexed, "--yes"]) == 0
    assert main(["forget", str(photos / "red.jpg"), "--db", indexed, "--yes"]) == 0
    assert _indexed_count(capsys, indexed) == 2
    assert main(["index", "--db", indexed, "--quiet"]) == 0  # a plain re-index keeps them forgotten
    assert _indexed_count(capsys, indexed) == 2
    assert main(["index", str(photos), "--db", indexed, "--quiet"]) == 0  # naming the folder brings them back
    assert _indexed_count(capsys, indexed) == 8
    assert main(["forget", str(photos), "--db", indexed, "--yes"]) == 0  # the watched folder itself
    assert _indexed_count(capsys, indexed) == 0
    assert main(["index", str(photos), "--db", indexed, "--quiet"]) == 0
    assert _indexed_count(capsys, indexed) == 8
