"""Another program's SQLite file in WAL mode, with changes still only in its WAL, is never written (issue 30).

Before: `cots status --db other.db` said "another program" and changed nothing in the tables, yet the
connection that looked at the file was the last one to close it, so SQLite checkpointed the WAL into the
database and deleted the WAL: the other program's file changed on disk.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from app.cli import main

# A program that writes in WAL mode and ends without closing (killed, or still running elsewhere): its last
# transaction lives only in the -wal file.
_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA wal_autocheckpoint=0")
conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
conn.execute("INSERT INTO invoices(amount) VALUES (12.5)")
os._exit(0)
"""

COMMANDS = [["status"], ["search", "x"], ["places"], ["similar", "a.jpg"], ["describe", "a.jpg"], ["index"],
            ["forget", "/x", "--yes"], ["repair"], ["people"], ["people", "show", "1"], ["people", "name", "1", "A"],
            ["people", "merge", "1", "2"], ["people", "move", "1", "--to", "new"], ["people", "hide", "1"],
            ["people", "regroup"], ["people", "forget", "1"]]


def _files(db) -> dict[str, str]:
    """The database and its WAL (the -shm beside them is SQLite's shared-memory index, which every reader
    of a WAL database takes its read locks in)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(db.parent.iterdir())
            if p.name in (db.name, db.name + "-wal")}


@pytest.fixture
def foreign_wal(tmp_path):
    db = tmp_path / "other.db"
    subprocess.run([sys.executable, "-c", _WRITER, str(db)], check=True)
    assert (tmp_path / "other.db-wal").stat().st_size > 0  # the table exists only in the WAL
    return db


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_foreign_database_in_wal_mode_stays_byte_identical(foreign_wal, capsys, command):
    before = _files(foreign_wal)
    assert {"other.db", "other.db-wal"} <= set(before)
    code = main([*command, "--db", str(foreign_wal)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "another program" in err and "invoices" in err and "Traceback" not in err
    assert _files(foreign_wal) == before  # the WAL was neither checkpointed into the file nor deleted
