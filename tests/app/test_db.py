"""Schema creation, stepwise migrations and connection settings."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from app.library import Library, LibraryError
from app.library.db import MIGRATIONS, SCHEMA_VERSION, LibraryDB


def test_new_database_is_at_the_current_version_in_wal_mode(tmp_path):
    db = LibraryDB(tmp_path / "a.db")
    assert db.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = set(db.db.table_names())
    assert {"folders", "media", "embeddings", "segments", "texts", "text_embeddings", "settings",
            "scan_errors", "media_fts"} <= tables


def test_migrations_run_stepwise_from_an_older_version(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.isolation_level = None
    import sqlite_utils

    MIGRATIONS[0](sqlite_utils.Database(conn))  # a version-1 database from an older cots
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO folders(path, added_at) VALUES ('/x', 0)")
    conn.close()
    db = LibraryDB(path)
    assert db.schema_version == SCHEMA_VERSION
    assert "scan_errors" in db.db.table_names()
    assert db.folders()[0][1].as_posix() == "/x"  # data kept


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(LibraryError, match="newer version"):
        LibraryDB(path)


def test_not_a_database_is_an_actionable_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LibraryError, match="not a cots library"):
        Library(path)


def test_each_thread_gets_its_own_connection(tmp_path):
    db = LibraryDB(tmp_path / "t.db")
    seen = []
    thread = threading.Thread(target=lambda: seen.append(db.conn))
    thread.start()
    thread.join()
    assert seen[0] is not db.conn


def test_transaction_rolls_back_on_error(tmp_path):
    db = LibraryDB(tmp_path / "r.db")
    with pytest.raises(RuntimeError):
        with db.transaction() as conn:
            conn.execute("INSERT INTO folders(path, added_at) VALUES ('/y', 0)")
            raise RuntimeError
    assert db.folders() == []


def test_the_data_version_changes_when_another_connection_commits(tmp_path):
    """What the window polls to notice `cots` run elsewhere: reads change nothing, another library's commit
    (another process's, here another connection of this one) and another thread's commit each change it."""
    library, other = Library(tmp_path / "lib.db"), Library(tmp_path / "lib.db")
    try:
        first = library.data_version()
        library.folders()
        other.folders()
        assert library.data_version() == first  # reads are no change
        other.add_folder(tmp_path)
        second = library.data_version()
        assert second != first and library.data_version() == second  # one change is seen once
        assert [str(p) for p in library.folders()] == [str(tmp_path.resolve())]
        thread = threading.Thread(target=lambda: library.db.set_setting("x", "1"))  # another thread's connection
        thread.start()
        thread.join()
        assert library.data_version() != second
    finally:
        other.close()
        library.close()
