"""kill -9 at any moment, re-run, and the library is what an uninterrupted run would have made."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import noise_image, run_indexer

from app.library import Library

WORKER = Path(__file__).with_name("crash_worker.py")
N_IMAGES = 300


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crash") / "photos"
    for i in range(N_IMAGES):
        sub = root / f"album{i % 6}"
        sub.mkdir(parents=True, exist_ok=True)
        noise_image(i, (24, 18)).save(sub / f"{i:04d}.png")
    (root / "album0" / "broken.jpg").write_bytes(b"not an image")
    return root


def _worker(db, folder, mode="none", n=0) -> int:
    return subprocess.run([sys.executable, str(WORKER), str(db), str(folder), mode, str(n)],
                          capture_output=True, timeout=300).returncode


def _state(db) -> dict:
    """Paths -> vectors, read back through a fresh process-like open (index loaded from disk)."""
    library = Library(db)
    conn = library.db.conn
    paths = [r[0] for r in conn.execute("SELECT path FROM media")]
    assert len(paths) == len(set(paths)), "a path appears twice"
    ok = dict(conn.execute("SELECT id, path FROM media WHERE status = 'ok'").fetchall())
    embeddings = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    index = library.vectors("media")
    assert len(ok) == embeddings == len(index), (len(ok), embeddings, len(index))
    assert set(index.ids.tolist()) == set(ok)
    vectors = index.get(list(ok))
    state = {ok[i]: v for i, v in zip(ok, vectors)}
    failed = {r[0] for r in conn.execute("SELECT path FROM media WHERE status = 'error'")}
    library.close()
    return {"vectors": state, "failed": failed}


def _same(a, b) -> None:
    assert a["vectors"].keys() == b["vectors"].keys()
    assert a["failed"] == b["failed"]
    for path, vector in a["vectors"].items():
        np.testing.assert_allclose(vector, b["vectors"][path], atol=1e-6)


@pytest.fixture(scope="module")
def reference(folder, tmp_path_factory):
    from fakes import fake_encoder

    db = tmp_path_factory.mktemp("ref") / "ref.db"
    library = Library(db)
    library.add_folder(folder)
    run_indexer(library, fake_encoder(), batch_size=8)
    library.close()
    state = _state(db)
    assert len(state["vectors"]) == N_IMAGES and len(state["failed"]) == 1
    return state


@pytest.mark.parametrize("mode,n", [
    ("batch", 5),
    pytest.param("in_transaction", 12, marks=pytest.mark.slow),
    pytest.param("apply", 20, marks=pytest.mark.slow),
    pytest.param("save", 2, marks=pytest.mark.slow),
    pytest.param("scan", 3, marks=pytest.mark.slow),
])
def test_sigkill_then_rerun_equals_an_uninterrupted_run(folder, reference, tmp_path, mode, n):
    db = tmp_path / "lib.db"
    assert _worker(db, folder, mode, n) == -signal.SIGKILL
    assert _worker(db, folder) == 0
    _same(_state(db), reference)


@pytest.mark.slow
def test_sigkill_during_moves_and_deletes(folder, reference, tmp_path):
    work = tmp_path / "photos"
    shutil.copytree(folder, work, copy_function=shutil.copy2)
    # Index the copy, then move one album and delete another, and kill mid-delete.
    assert _worker(tmp_path / "copy.db", work) == 0
    shutil.move(work / "album1", work / "renamed album")
    shutil.rmtree(work / "album2")
    assert _worker(tmp_path / "copy.db", work, "delete", 0) == -signal.SIGKILL
    assert _worker(tmp_path / "copy.db", work) == 0
    state = _state(tmp_path / "copy.db")
    assert len(state["vectors"]) == N_IMAGES - N_IMAGES // 6
    assert not any("/album2/" in p or "/album1/" in p for p in state["vectors"])
    moved = {Path(p).name: v for p, v in state["vectors"].items() if "/renamed album/" in p}
    original = {Path(p).name: v for p, v in reference["vectors"].items() if "/album1/" in p}
    assert moved.keys() == original.keys()
