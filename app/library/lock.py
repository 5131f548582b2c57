"""One indexing run per library at a time, across processes (the GUI and `cots index` may both try).

An OS file lock, so a killed process (even by SIGKILL) never leaves the library locked.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from app.library.errors import LibraryError

if os.name == "nt":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True


@contextlib.contextmanager
def indexing_lock(db_path: Path) -> Iterator[None]:
    """Hold `<db>.indexing.lock` for the duration; raise LibraryError if another process holds it."""
    lock_path = db_path.with_name(db_path.name + ".indexing.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            raise LibraryError(f"another cots process is indexing this library ({db_path}); "
                               "wait for it to finish or stop it, then try again")
        yield
    finally:
        os.close(fd)  # closing releases the lock
