"""A wrong --db never changes another program's file, and read-only commands never create one."""
from __future__ import annotations

import hashlib
import sqlite3

import pytest

from app.cli import main
from app.library import Library, LibraryError
from app.library.db import APPLICATION_ID


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", [["status"], ["search", "x"], ["index"], ["forget", "/x", "--yes"], ["repair"]])
def test_another_programs_sqlite_file_is_left_alone(tmp_path, capsys, command):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    conn.execute("INSERT INTO invoices(amount) VALUES (12.5)")
    conn.commit()
    conn.close()
    before = _digest(other)
    assert main([*command, "--db", str(other)]) == 2
    err = capsys.readouterr().err
    assert "another program" in err and "invoices" in err and "Traceback" not in err
    assert _digest(other) == before
    tables = {r[0] for r in sqlite3.connect(other).execute("SELECT name FROM sqlite_master")}
    assert tables == {"invoices"}


def test_a_file_that_is_not_sqlite_is_left_alone(tmp_path, capsys):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + bytes(2000))
    assert main(["index", "--db", str(photo)]) == 2
    assert "not a SQLite database" in capsys.readouterr().err
    assert photo.read_bytes() == b"\xff\xd8\xff\xe0" + bytes(2000)


@pytest.mark.parametrize("command", [["status"], ["search", "x"], ["similar", "a.jpg"], ["describe", "a.jpg"],
                                     ["forget", "/x", "--yes"], ["repair"]])
def test_read_only_commands_create_nothing(tmp_path, capsys, command):
    missing = tmp_path / "no" / "such" / "folder" / "lib.db"
    assert main([*command, "--db", str(missing)]) == 2
    assert "no library at" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_new_libraries_carry_the_cots_application_id_and_old_ones_are_recognised(tmp_path):
    Library(tmp_path / "new.db").close()
    conn = sqlite3.connect(tmp_path / "new.db")
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.execute("PRAGMA application_id = 0")  # as written by cots before schema 3
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    Library(tmp_path / "new.db", create=False).close()  # recognised by its tables, and migrated
    assert sqlite3.connect(tmp_path / "new.db").execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    with pytest.raises(LibraryError, match="no library"):
        Library(tmp_path / "missing.db", create=False)
