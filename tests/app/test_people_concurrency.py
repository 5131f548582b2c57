"""`cots people` while another process's `cots index` reads faces (its second pass), and kill -9 during that
pass (issue 30: cases that held; these tests keep them held)."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import noise_image

from app.cli import main
from app.library import Library
from app.library.people import People, PeopleError

WORKER = Path(__file__).with_name("crash_worker.py")
ROUNDS = 33  # four commands each: 132 people commands


def _photos(folder: Path, numbers) -> None:
    folder.mkdir(exist_ok=True)
    for i in numbers:
        noise_image(i, (24, 18)).save(folder / f"{i:04d}.png")


def _worker(db, folder, n: int = 10**9, wait: bool = True):
    command = [sys.executable, str(WORKER), str(db), str(folder), "faces", str(n)]
    if wait:
        return subprocess.run(command, capture_output=True, timeout=300).returncode
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _faces_read(db) -> tuple[int, int, int]:
    """(readable photos, photos the faces signal has read, faces stored)."""
    with Library(db) as library:
        conn = library.db.conn
        return (conn.execute("SELECT COUNT(*) FROM media WHERE status = 'ok'").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM signal_results WHERE signal = 'faces'").fetchone()[0],
                conn.execute("SELECT COUNT(*) FROM faces").fetchone()[0])


def _people(capsys, db, *argv) -> str:
    capsys.readouterr()
    code = main(["people", *argv, "--db", str(db)])
    out, err = capsys.readouterr()
    assert code == 0, (argv, err)  # never "busy" nor "locked": each command waits its turn
    return out


@pytest.mark.slow  # two indexing processes and 132 commands: ~20 s on the shared machine
def test_people_commands_beside_a_second_pass_in_another_process_lose_nothing(tmp_path, capsys):
    folder, db = tmp_path / "photos", tmp_path / "lib.db"
    _photos(folder, range(24))
    assert _worker(db, folder) == 0  # four people of six photos each
    _photos(folder, range(24, 144))  # 120 more photos: the next run's second pass reads their faces
    with Library(db) as library:
        people = {p.id: [f.id for f in People(library).faces(p.id)] for p in People(library).list()}
    assert len(people) == 4
    running = _worker(db, folder, wait=False)
    expected_names, forgotten, leftovers, beside = {}, [], [], 0
    for r in range(ROUNDS):
        beside += running.poll() is None
        person = sorted(people)[r % 4]
        face = people[person][r % len(people[person])]
        expected_names[person] = f"Name {r}"
        _people(capsys, db, "name", str(person), f"Name {r}")
        new = int(re.search(r"person (\d+)", _people(capsys, db, "move", str(face), "--to", "new")).group(1))
        _people(capsys, db, "merge", str(new), str(person))  # the face comes back
        if (r // 4) % 2 == 0:  # four rounds move a face out of each person, the next four forget those
            other = people[person][(r + 1) % len(people[person])]
            out = _people(capsys, db, "move", str(other), "--to", "new")
            leftovers.append(int(re.search(r"person (\d+)", out).group(1)))
            people[person].remove(other)
        else:
            forgotten.append(leftovers.pop())
            _people(capsys, db, "forget", str(forgotten[-1]))  # the moved face goes, with its vector
    assert running.wait(timeout=300) == 0, running.stderr.read()
    assert beside > 0  # some of the commands ran while the second pass did
    photos, read, faces = _faces_read(db)
    assert photos == read == 144  # the second pass read every photo, each once
    assert faces == photos - len(forgotten)  # every face kept but the forgotten ones
    with Library(db) as library:
        book = People(library)
        for person, name in expected_names.items():
            assert book.get(person).name == name  # every last decision held
        for gone in forgotten:
            with pytest.raises(PeopleError):
                book.get(gone)
        assert sum(p.photos for p in book.list(include_hidden=True, min_photos=1)) == faces


@pytest.mark.slow  # three indexing processes: ~12 s
def test_kill_9_during_the_faces_pass_then_the_next_run_finishes_it(tmp_path):
    folder, db = tmp_path / "photos", tmp_path / "lib.db"
    _photos(folder, range(40))
    assert _worker(db, folder, n=15) == -signal.SIGKILL  # inside the 15th photo's faces transaction
    photos, read, faces = _faces_read(db)
    assert photos == 40 and read == faces == 14  # the half-written 15th left nothing behind
    assert _worker(db, folder) == 0
    assert _faces_read(db) == (40, 40, 40)  # finished, each photo once
    with Library(db) as library:
        assert sorted(p.photos for p in People(library).list()) == [10, 10, 10, 10]
