"""A damaged library database: one line that names the way out, and `cots repair` salvages it."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest
from fakes import noise_image, run_indexer

from app.cli import main
from app.library import Library
from app.library.encoder import Encoder
from app.library.repair import integrity_problems

N = 40


@pytest.fixture
def cli_encoder(encoder, monkeypatch):
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    return encoder


def _indexed_library(tmp_path, encoder):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(N):
        noise_image(i).save(root / f"n{i:03d}.png")
    db = tmp_path / "lib.db"
    with Library(db) as library:
        library.add_folder(root)
        assert run_indexer(library, encoder).added == N
    return db


def _zero_root_page(db, table: str) -> None:
    """Overwrite the first page of a table's b-tree with zeros: its rows become unreadable."""
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    conn.close()
    assert not os.path.exists(f"{db}-wal") or os.path.getsize(f"{db}-wal") == 0
    with open(db, "r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(b"\0" * page_size)


def _status(capsys, db) -> dict:
    capsys.readouterr()
    assert main(["status", "--json", "--db", str(db)]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("sqlite3_program", [True, False])
def test_a_damaged_library_says_so_and_repair_salvages_it(tmp_path, cli_encoder, capsys, monkeypatch,
                                                          sqlite3_program):
    if not sqlite3_program:
        monkeypatch.setattr(shutil, "which", lambda name: None)  # row by row, through Python
    db = _indexed_library(tmp_path, cli_encoder)
    _zero_root_page(db, "media")
    assert integrity_problems(db)
    for argv in (["status"], ["search", "noise"], ["index", "--quiet"], ["similar", str(tmp_path / "photos/n001.png")]):
        capsys.readouterr()
        assert main([*argv, "--db", str(db)]) == 2, argv
        err = capsys.readouterr().err
        assert "damaged" in err and "cots repair" in err and "Traceback" not in err, (argv, err)
        assert [line.startswith("cots: error:") for line in err.strip().splitlines()][-1:] == [True], err
        assert err.count("cots: error:") == 1

    assert main(["repair", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "kept as" in out and "cots index" in out
    kept = [p for p in os.listdir(tmp_path) if p.startswith("lib.db.damaged-") and not p.endswith(("-wal", "-shm"))]
    assert len(kept) == 1 and integrity_problems(tmp_path / kept[0])  # the damaged file, unchanged, aside
    assert not integrity_problems(db)
    assert _status(capsys, db)["folders"] == [str(tmp_path / "photos")]

    assert main(["index", "--db", str(db), "--quiet"]) == 0  # re-embeds what was lost
    status = _status(capsys, db)
    assert status["indexed"] == N and all(v["healthy"] for v in status["index"].values())
    capsys.readouterr()
    assert main(["similar", str(tmp_path / "photos/n001.png"), "--db", str(db), "--json", "-k", "3"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


def test_repair_of_a_sound_library_keeps_everything(tmp_path, cli_encoder, capsys):
    db = _indexed_library(tmp_path, cli_encoder)
    assert main(["repair", "--db", str(db)]) == 0
    assert "sound" in capsys.readouterr().out
    assert not [p for p in os.listdir(tmp_path) if ".damaged-" in p]
    assert _status(capsys, db)["indexed"] == N


def test_repair_refuses_what_is_not_a_library(tmp_path, capsys):
    assert main(["repair", "--db", str(tmp_path / "none.db")]) == 2
    assert "no library" in capsys.readouterr().err and not (tmp_path / "none.db").exists()


def _leaf_pages(db, table: str) -> list[int]:
    try:
        conn = sqlite3.connect(db)
        pages = [r[0] for r in conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", (table,))]
        conn.close()
        return pages
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table")


def test_repair_steps_over_one_bad_page_and_keeps_the_rest(tmp_path, encoder, monkeypatch):
    from app.library.repair import repair_library

    monkeypatch.setattr(shutil, "which", lambda name: None)  # the row-by-row salvage
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(240):
        noise_image(i, (8, 8)).save(root / f"n{i:03d}.png")
    db = tmp_path / "lib.db"
    with Library(db) as library:
        library.add_folder(root)
        run_indexer(library, encoder)
    leaves = _leaf_pages(db, "embeddings")
    assert len(leaves) >= 3
    page_size = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as handle:  # one leaf in the middle: the rows before and after it stay readable
        handle.seek((leaves[len(leaves) // 2] - 1) * page_size)
        handle.write(b"\0" * page_size)
    report = repair_library(db)
    assert report.damaged and report.rows["media"] == 240
    assert 0 < report.to_reembed < 120 and report.rows["embeddings"] == 240 - report.to_reembed
    with Library(db) as library:
        again = run_indexer(library, encoder)
        assert again.updated == report.to_reembed and again.unchanged == 240 - report.to_reembed
        assert library.status().indexed == 240



def test_repair_keeps_the_people_their_names_and_faces(tmp_path, encoder, monkeypatch):
    """People are a person's own work (names, merges): a salvage copies them with the rest."""
    from test_people import box, identity, store

    from app.library.people import People
    from app.library.repair import repair_library

    monkeypatch.setattr(shutil, "which", lambda name: None)  # the row-by-row salvage
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(240):
        noise_image(i, (8, 8)).save(root / f"n{i:03d}.png")
    db = tmp_path / "lib.db"
    with Library(db) as library:
        library.add_folder(root)
        run_indexer(library, encoder)
        for media_id in (1, 2):
            store(library, media_id, (box(), identity(1, 0.1, media_id)))
        people = People(library)
        anna = people.list(min_photos=1)[0].id
        people.name(anna, "Anna")
    leaves = _leaf_pages(db, "embeddings")
    page_size = sqlite3.connect(db).execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as handle:
        handle.seek((leaves[len(leaves) // 2] - 1) * page_size)
        handle.write(b"\0" * page_size)
    report = repair_library(db)
    assert report.damaged and report.rows["people"] == 1 and report.rows["faces"] == 2
    with Library(db) as library:
        people = People(library)
        assert people.find("anna") == [anna]
        assert sorted(people.photos(anna)) == sorted(str(root / f"n{i:03d}.png") for i in (0, 1))

def test_repair_of_a_truncated_library_salvages_what_is_left_and_counts_what_is_lost(tmp_path, encoder, capsys,
                                                                                      monkeypatch):
    """Before (issue 21): a library cut short salvaged nothing (its schema pages sit near the end) and said
    "0 items lost". Now the working copy is padded and, when needed, given back this version's schema; every
    item is either salvaged or counted as lost."""
    from app.library.repair import repair_library

    monkeypatch.setattr(shutil, "which", lambda name: None)  # the row-by-row salvage, whatever is installed
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    root = tmp_path / "photos"
    root.mkdir()
    n = 240
    for i in range(n):
        noise_image(i, (8, 8)).save(root / f"n{i:03d}.png")
    clean = tmp_path / "clean.db"
    with Library(clean) as library:
        library.add_folder(root)
        run_indexer(library, encoder)
    size = os.path.getsize(clean)
    db = tmp_path / "lib.db"
    salvaged = {}
    for fraction in (0.2, 0.4, 0.6, 0.8, 0.95):
        for leftover in tmp_path.glob("lib.db*"):
            leftover.unlink()
        shutil.copyfile(clean, db)
        os.truncate(db, int(size * fraction) // 4096 * 4096)
        report = repair_library(db)
        assert report.damaged and "cut short" in report.notes[0], fraction
        assert report.rows["folders"] == 1  # the watched folder survives: the next index finds every file
        assert report.rows["media"] + report.items_lost == n, (fraction, report)  # each salvaged or counted
        assert report.items_lost_exact == (report.rows["media"] == n)
        assert not integrity_problems(db)
        salvaged[fraction] = report.rows["media"]
    # the later the cut, the more is salvaged (before: nothing at any cut)
    assert 0 < salvaged[0.6] <= salvaged[0.8] <= salvaged[0.95] and salvaged[0.6] < n, salvaged

    for leftover in tmp_path.glob("lib.db*"):
        leftover.unlink()
    shutil.copyfile(clean, db)
    os.truncate(db, int(size * 0.6) // 4096 * 4096)
    capsys.readouterr()
    assert main(["repair", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert f"salvaged (row by row): 3 settings, 1 folders, 0 scan_errors, {salvaged[0.6]} media" in out
    assert f"at least {n - salvaged[0.6]} indexed items lost" in out and "0 items lost" not in out
    assert main(["index", "--db", str(db), "--quiet"]) == 0
    assert _status(capsys, db)["indexed"] == n


def test_repair_copies_every_table_of_the_schema(tmp_path):
    """A table added by a migration and forgotten in repair.TABLES would be emptied by every repair (the people
    suggestions' "No" answers were, until issue 32); the full-text index is rebuilt from media instead."""
    from app.library.db import LibraryDB
    from app.library.repair import TABLES

    db = LibraryDB(tmp_path / "fresh.db")
    try:
        tables = {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()
    assert {t for t in tables if not t.startswith("media_fts")} == set(TABLES)
