"""Indexes a folder with the fake model, optionally killing itself with SIGKILL at a chosen point.

Used by test_crash_safety.py: ``python crash_worker.py DB FOLDER MODE N``. Modes: none, scan (during
the scan), batch (after N committed batches), in_transaction (inside the Nth write transaction,
before COMMIT), apply (after a commit, before the in-memory index sees it), save (between the
files of a vector-index save), delete (inside the deletion of vanished files), signal (with a fake
second-pass signal, inside the transaction of the Nth file's signal results; N huge: never), faces (the
same with a fake faces signal: one face per photo, four people, a little slow, so that people commands
can run beside it).
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fakes import fake_encoder  # noqa: E402

from app.library import Library  # noqa: E402
from app.library.db import LibraryDB  # noqa: E402
from app.library.indexer import Indexer, IndexOptions  # noqa: E402
from app.library.signals.base import SignalOutput  # noqa: E402
from app.library.signals.faces import FaceSignal  # noqa: E402


class WordSignal:
    """A second-pass signal: the file's stem as a word ("word0042")."""

    name, version, second_pass = "word", 1, True

    def unavailable(self):
        return None

    def extract(self, path, image):
        return SignalOutput(text="word" + Path(path).stem)


class FakeFaces:
    """The faces signal's place (its name and declaration, so its boxes become faces and people) without its
    models: one face per photo whose identity is one of four made-up people (the file's number modulo 4)."""

    name, version, second_pass = "faces", 1, True
    declares = FaceSignal.declares

    def unavailable(self):
        return None

    def extract(self, path, image):
        import time

        import numpy as np

        from app.library.signals.base import Box
        from app.library.signals.faces import FaceOutput

        time.sleep(0.03)  # long enough a pass for another process's commands to meet it
        number = int(Path(path).stem)
        base = np.random.default_rng(number % 4).normal(size=128)
        jitter = np.random.default_rng(1000 + number).normal(size=128)
        vector = base / np.linalg.norm(base) + 0.05 * jitter / np.linalg.norm(jitter)
        return FaceOutput(text="", boxes=[Box(0.3, 0.2, 0.2, 0.25, 0.9, label="face")],
                          vectors=[vector.astype(np.float32)])


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(db: str, folder: str, mode: str, n: int) -> None:
    library = Library(db)
    library.add_folder(folder)
    counter = {"calls": 0}

    def nth() -> bool:
        counter["calls"] += 1
        return counter["calls"] >= n

    from app.library import signals

    # like tests/app/conftest.py: the real OCR and face detector are not what these crashes test
    signals.SIGNAL_CLASSES = tuple(cls for cls in signals.SIGNAL_CLASSES if not cls.second_pass)
    if mode == "in_transaction":
        real = LibraryDB.bump_generation
        LibraryDB.bump_generation = lambda self, conn: die() if nth() else real(self, conn)
    elif mode == "apply":
        real_apply = Library.apply
        Library.apply = lambda self, *a, **k: die() if nth() else real_apply(self, *a, **k)
    elif mode == "save":
        real_replace = os.replace
        os.replace = lambda a, b: die() if nth() else real_replace(a, b)
    elif mode == "delete":
        real_delete = Library.delete_media
        Library.delete_media = lambda self, ids, **k: (real_delete(self, ids[: len(ids) // 2], **k), die())
    elif mode in ("signal", "faces"):
        from app.library import signal_runner

        fake = WordSignal if mode == "signal" else FakeFaces
        signals.SIGNAL_CLASSES = (*signals.SIGNAL_CLASSES, fake)  # place, EXIF and the fake
        real_store = signal_runner.store_result  # the second pass's (the indexer holds its own reference)
        signal_runner.store_result = lambda *a, **k: die() if nth() else real_store(*a, **k)

    def progress(p) -> None:
        if mode == "scan" and p.phase == "scan" and nth():
            die()
        if mode == "batch" and p.phase == "index" and nth():
            die()

    options = IndexOptions(batch_size=8, workers=2, vocabulary=False, save_every_s=0.0)
    Indexer(library, fake_encoder(), options, progress=progress).run()
    library.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
