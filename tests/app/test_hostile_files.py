"""Hostile files kept beside or inside a library (issue 21): a damaged vector index file, ...

Each case is a repro of a crash or a leak found by trying; docs/HOSTILE_INPUTS.md lists them.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import run_indexer
from PIL import Image

from app.cli import main
from app.library import Library
from app.library.encoder import Encoder
from app.library.vector_index import EfChoice, HnswParams, VectorIndex

ROOT = Path(__file__).resolve().parents[2]


def _run_worker(worker: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests" / "app")]))
    return subprocess.run([sys.executable, str(ROOT / "tests" / "app" / worker), *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


# -- 1. the HNSW file ----------------------------------------------------------------------------------
@pytest.mark.slow  # each damaged file loads in a fresh interpreter (~3 s)
def test_no_flipped_bit_or_truncation_of_an_index_file_crashes(tmp_path):
    """Before: 147 of 192 single-bit flips in the 96-byte header were a segfault (exit 139) in hnswlib's
    load or first search. Now each is refused before hnswlib sees it, or loads and answers safely."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VectorIndex(16, HnswParams(M=4), capacity=16)  # M=4: many upper-level links to damage too
    index.add(np.arange(400) + 1, vectors)
    index.remove([5, 6])
    prefix = tmp_path / "lib.media"
    index.save(prefix, {"model_id": "m", "kind": "media", "generation": 1})
    size = os.path.getsize(str(prefix) + ".hnsw")
    cases = [f"flip:{byte}:{bit}" for byte in range(96) for bit in (0, 3, 6)]
    cases += [f"flip:{byte}:2" for byte in range(96, size, 53)]  # links, vectors and labels
    cases += [f"trunc:{at}:0" for at in (0, 50, 96, 500, size // 2, size - 300, size - 1)]
    result = _run_worker("hnsw_flip_worker.py", str(prefix), "16", *cases)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    outcome = dict(line.split() for line in result.stdout.splitlines())
    assert set(outcome) == set(cases)
    # the fields that crashed hnswlib: offsets, sizes, counts, level, entry point, M, M0
    for byte in [*range(0, 8), *range(16, 48), *range(48, 56), *range(56, 80)]:
        assert outcome[f"flip:{byte}:0"] == "refused", byte
    assert all(outcome[f"trunc:{at}:0"] == "refused" for at in (0, 50, 96, 500, size // 2))
    assert VectorIndex.load(prefix, 16) is not None  # the worker put the clean file back: it loads


def test_a_damaged_index_header_is_rebuilt_from_the_database_and_said_once(library, encoder, photos, capsys, caplog):
    library.add_folder(photos)
    run_indexer(library, encoder)
    prefix = library.index_prefix("media", library.model_id)
    red = library.media_by_path(photos / "red.jpg").id
    before = library.vectors("media").search(library.embedding(red), 8)
    library.close()
    hnsw = Path(str(prefix) + ".hnsw")
    data = bytearray(hnsw.read_bytes())
    data[16] ^= 0x40  # cur_element_count: a segfault before
    hnsw.write_bytes(bytes(data))

    assert main(["status", "--db", str(library.path)]) == 0
    out, err = capsys.readouterr()
    assert "media index: the saved index file was damaged (" in out and "rebuilt from the database" in out
    assert "Traceback" not in err
    assert [r.levelname for r in caplog.records if "index is damaged" in r.getMessage()] == ["WARNING"]
    lib = Library(library.path)
    after = lib.vectors("media").search(lib.embedding(red), 8)
    assert after[0][0] == red and after[0].tolist() == before[0].tolist() and np.allclose(after[1], before[1])
    assert lib.status().index["media"]["rebuilt"] is None  # saved again: said once, not at every command
    lib.close()


# -- 2. a very elongated image --------------------------------------------------------------------------
def _elongated_png(path: Path) -> Path:
    Image.new("RGB", (50000, 1), (200, 10, 10)).save(path)
    assert path.stat().st_size < 300  # 230 bytes
    return path


@pytest.mark.slow  # a fresh interpreter under a memory limit (~4 s)
def test_the_resize_of_a_50000x1_image_is_bounded(tmp_path):
    """Before: the model's resize to a 224 short side made it 11.2M x 224 pixels (~7.5 GB); the worker runs
    the real evaluation transform under a 1 GiB data limit (a MemoryError there before the fix)."""
    result = _run_worker("elongated_worker.py", str(_elongated_png(tmp_path / "long.png")))
    assert result.returncode == 0, result.stderr[-2000:]
    assert float(result.stdout.strip()) < 64  # MiB of peak RSS growth (measured: 3)


def test_similar_and_index_on_a_50000x1_image_say_why_in_one_line(library, encoder, photos, capsys, monkeypatch):
    _elongated_png(photos / "long.png")
    library.add_folder(photos)
    run_indexer(library, encoder)
    failures = {Path(f.path).name: f.error for f in library.failures()}
    assert "too elongated" in failures["long.png"]
    library.close()
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    capsys.readouterr()
    assert main(["similar", str(photos / "long.png"), "--db", str(library.path)]) == 2
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("cots: error:")]
    assert len(errors) == 1 and "image too elongated: 50000x1 pixels, over 100:1" in errors[0], err
    assert "Traceback" not in err


# -- 7. caption sidecars that point elsewhere --------------------------------------------------------
def test_a_sidecar_symlinked_out_of_the_watched_folder_is_not_read(library, encoder, photos, tmp_path, monkeypatch):
    """Before: ``photo.jpg.txt -> /proc/self/environ`` stored the indexing process's environment in the
    library, searchable. Now only regular files inside the watched folder are read, with a bounded read."""
    monkeypatch.setenv("COTS_TEST_SECRET", "hunter2-in-the-environment")
    outside = tmp_path / "outside.txt"
    outside.write_text("a secret kept outside the watched folder")
    (photos / "sub").mkdir()
    Image.new("RGB", (32, 24), "blue").save(photos / "sub" / "inner.jpg")
    (photos / "red.jpg.txt").symlink_to("/proc/self/environ")
    (photos / "blue.jpg.txt").symlink_to(outside)
    (photos / "green.txt").symlink_to(photos / "green.txt")  # a loop
    (photos / "shared.txt").write_text("a caption beside the photos")
    (photos / "sub" / "inner.jpg.txt").symlink_to(photos / "shared.txt")  # inside the folder: fine
    library.add_folder(photos)
    run_indexer(library, encoder)
    captions = dict(library.db.conn.execute("SELECT name, caption FROM media"))
    assert not any("hunter2" in (c or "") or "secret" in (c or "") for c in captions.values()), captions
    assert captions["inner"] == "a caption beside the photos"
    hits = library.db.conn.execute("SELECT COUNT(*) FROM media_fts WHERE media_fts MATCH 'hunter2'").fetchone()
    assert hits == (0,)


def test_a_caption_read_is_bounded_even_when_the_size_lies(tmp_path):
    """procfs files report size 0: the read stops at the limit whatever stat says."""
    from cots_core.captions import MAX_CAPTION_BYTES, read_captions

    photo = tmp_path / "p.jpg"
    Image.new("RGB", (8, 8)).save(photo)
    (tmp_path / "p.jpg.txt").write_text("x " * MAX_CAPTION_BYTES)
    assert read_captions(photo) is None
    (tmp_path / "p.jpg.txt").unlink()
    (tmp_path / "p.jpg.txt").symlink_to("/proc/self/status")  # a regular file of "size 0" outside the folder
    assert read_captions(photo) is None and read_captions(photo, root="/") is not None


# -- 9. strings from files and the library database are printed escaped -----------------------------
def test_strings_from_the_library_and_its_files_are_printed_escaped(library, encoder, photos, tmp_path, capsys,
                                                                    monkeypatch):
    """Before: the model source, model id, index settings and the --db path were printed raw, so a library
    (or its index json) could clear the screen, retitle the terminal or fake extra lines."""
    import json
    import shutil
    import sqlite3

    library.add_folder(photos)
    run_indexer(library, encoder)
    prefix = library.index_prefix("media", library.model_id)
    library.close()
    hostile = "\x1b[2J\x1b]0;owned\x07src\nmodel     fake-line"
    conn = sqlite3.connect(library.path)
    conn.execute("UPDATE settings SET value = ? WHERE key = 'model_source'", (hostile,))
    conn.commit()
    conn.close()
    meta = json.loads(Path(str(prefix) + ".json").read_text())
    meta["ef_choice"] = {"ef_search": "\x1b[31m64", "recall": 1.0, "size": 1, "queries": 1}
    Path(str(prefix) + ".json").write_text(json.dumps(meta))
    folder = tmp_path / "lib\x1b[31mred\nline"
    folder.mkdir()
    for item in library.path.parent.iterdir():
        if item.name.startswith(library.path.name.split(".")[0]) and item.is_file():
            shutil.copy(item, folder / item.name)
    db = str(folder / library.path.name)
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    for argv in (["status"], ["search", "red"], ["describe", str(photos / "red.jpg")], ["index", "--quiet"],
                 ["similar", str(photos / "red.jpg")], ["status"]):
        capsys.readouterr()
        code = main([*argv, "--db", db])
        out, err = capsys.readouterr()
        assert code == (2 if argv[0] == "describe" else 0), (argv, err)  # describe: no texts in a fake library
        assert "\x1b" not in out + err and "\x07" not in out + err, (argv, out, err)
        assert "\nmodel     fake-line" not in out + err, argv
    assert "\\x1b[2J\\x1b]0;owned\\x07src\\nmodel" in out and "lib\\x1b[31mred\\nline" in out
    assert EfChoice.from_meta(meta["ef_choice"]) is None  # a setting of the wrong type is not used either


# -- also: a read-only library says so ------------------------------------------------------------------
def test_a_read_only_library_says_it_is_read_only(library, encoder, photos, capsys, monkeypatch):
    """Before: "cannot be used (attempt to write a readonly database); check the disk". The test opens the
    library read-only through SQLite itself (file permissions do not bind root, who runs CI)."""
    import sqlite3

    from app.library import db as library_db

    library.add_folder(photos)
    run_indexer(library, encoder)
    library.close()
    real_connect = sqlite3.connect

    def read_only(path, *args, **kwargs):
        if kwargs.pop("uri", False):  # already a URI: the read-only open of a foreign WAL library
            return real_connect(path, *args, uri=True, **kwargs)
        return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(library_db.sqlite3, "connect", read_only)
    monkeypatch.setattr(Encoder, "load", classmethod(lambda cls, *a, **k: encoder))
    (photos / "new.jpg").write_bytes((photos / "red.jpg").read_bytes()[::-1])  # something for index to write
    capsys.readouterr()
    assert main(["index", "--db", str(library.path), "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("cots: error:")]
    assert len(lines) == 1 and "is read-only" in lines[0] and "check the disk" not in err, err


# -- also: other libraries' warnings stay out of our output ---------------------------------------------
@pytest.mark.slow  # a whole `cots index` in a subprocess (~10 s)
def test_pillow_and_ffmpeg_warnings_go_to_the_log_not_the_terminal(tmp_path):
    """Before: ``UserWarning: Corrupt EXIF data`` (with Pillow's source line) and ffmpeg's ``[mov,mp4 @ 0x..]
    moov atom not found`` were printed between our lines. A subprocess: ffmpeg writes to the real stderr."""
    import io as _io

    from cots_core import COTS, ModelConfig

    folder = tmp_path / "f"
    folder.mkdir()
    buffer = _io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(buffer, "JPEG")
    jpeg = buffer.getvalue()
    exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x05\x01\x0f\x00\x02\xff\xff\xff\xf0\x00\x00\x00\x00"  # cut short
    (folder / "bad_exif.jpg").write_bytes(jpeg[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + jpeg[2:])
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 12)
    COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).save_pretrained(tmp_path / "tiny")
    env = dict(os.environ, PYTHONPATH=str(ROOT), COTS_DATA_DIR=str(tmp_path / "data"))
    env.pop("OPENCV_FFMPEG_LOGLEVEL", None)
    result = subprocess.run([sys.executable, "-m", "app", "index", str(folder), "--db", str(tmp_path / "lib.db"),
                             "--model", str(tmp_path / "tiny"), "--device", "cpu", "--quiet"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1 new" in result.stdout and "broken.mp4: video could not be opened" in result.stdout  # said once, ours
    noise = [line for line in result.stderr.splitlines()
             if not line.startswith(("watching ", "loading model ", "indexing into "))]
    assert not noise, result.stderr
