"""No command prints a traceback, whatever a person types or keeps on disk (docs/HOSTILE_INPUTS.md).

The fuzz test drives every library command in process with the tiny fake model: random bytes as
files, odd names (not UTF-8, newlines, leading dashes, very long), odd queries, flags and --db
values. Each call must end with an exit status and at most a one-line error, never a traceback
nor the last-resort "internal error", and the library must hold exactly what it held before.
"""
from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys

import pytest
from fakes import noise_image, solid
from PIL import Image

from app.cli import main
from app.library.encoder import Encoder

ROUNDS = 240


@pytest.fixture
def fake_models(encoder, monkeypatch):
    """The library's own model is the fake; any other --model goes through the real loader."""
    real_load = Encoder.load.__func__

    def load(cls, name_or_path="cots-lite", device=None, text_first=False):
        if str(name_or_path) == "fake":
            return encoder
        assert str(name_or_path) != "cots-lite", "the fuzz test must not build cots-lite"
        return real_load(cls, name_or_path, device, text_first)

    monkeypatch.setattr(Encoder, "load", classmethod(load))
    return encoder


def _odd_files(root, rng: random.Random) -> None:
    root.mkdir()
    for i in range(4):
        noise_image(i).save(root / f"n{i}.png")
    solid("red").save(root / "red.jpg")
    names = [b"img_15\xe9.jpg", b"two\nlines.jpg", b"-rf.jpg", b"--help.png", b"x" * 200 + b".jpg",
             b"\x1b[31mred.jpg", b"caf\xc3\xa9 \xe2\x80\xae.jpg"]
    for name in names:
        solid("blue").save(os.path.join(os.fsdecode(root), os.fsdecode(name)), format="JPEG")
    for i in range(6):  # random bytes named as media
        ext = rng.choice([".jpg", ".png", ".mp4", ".gif", ".webp", ".tif"])
        size = rng.choice([0, 1, 16, 500, 5000])
        head = rng.choice([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\0\0\0\0WEBP"])
        (root / f"junk{i}{ext}").write_bytes(head + rng.randbytes(size))
    os.symlink("/proc/self/environ", root / "red.jpg.txt")  # a sidecar pointing out of the folder (issue 21)
    os.mkdir(os.path.join(os.fsdecode(root), os.fsdecode(b"dir\xff")))
    solid("green").save(os.path.join(os.fsdecode(root), os.fsdecode(b"dir\xff"), "in.jpg"))


def _values(tmp_path, root, rng: random.Random) -> list[str]:
    fifo = tmp_path / "fifo.jpg"
    if hasattr(os, "mkfifo") and not fifo.exists():
        os.mkfifo(fifo)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(rng.randbytes(3000))
    long_png = tmp_path / "long.png"  # 230 bytes, 50000x1: 7.5 GB once resized before issue 21
    if not long_png.exists():
        Image.new("RGB", (50000, 1)).save(long_png)
    models = []  # model folders that are not models: each must fail in one line, before reading much
    for name, content in (("m_random", rng.randbytes(200)), ("m_list", b"[]"), ("m_nulls", b"\0" * 50),
                          ("m_fields", b'{"text": 5, "vision": [1]}'), ("m_automap", b'{"auto_map": {}}'),
                          ("m_layers", b'{"text": {"hf_config": {"num_hidden_layers": 1000000}}}'),
                          ("m_huge", b'{"image_size": 1e6, "embed_dim": 1e9}'),
                          ("m_hub", b'{"vision": {"model_name": "hf-hub:someone/model"}}')):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "config.json").write_bytes(content)
        models.append(str(tmp_path / name))
    if hasattr(os, "mkfifo") and not (tmp_path / "m_fifo").exists():
        (tmp_path / "m_fifo").mkdir()
        os.mkfifo(tmp_path / "m_fifo" / "config.json")
        models.append(str(tmp_path / "m_fifo"))
    return [*models,
        "", " ", "-", "--", "-1", "0", "1e309", "nan", "inf", "-inf", "NaN", "99999999999999999999",
        "a cat", "red", "*", '"', "'", "\\", "AND OR NOT", "NEAR(", "^", "name:x", "% _", "\x00", "\n\n",
        "x" * 5000, "\u202e\u200b", "😀" * 10, os.fsdecode(b"caf\xe9"), os.fsdecode(rng.randbytes(12)),
        "/", ".", "..", "/dev/null", "/proc/self/mem", str(long_png), str(fifo), str(junk), str(root), str(root / "red.jpg"),
        str(root / "junk0.jpg"), str(tmp_path / "missing.jpg"), str(tmp_path / "missing" / "lib.db"),
        os.path.join(os.fsdecode(root), os.fsdecode(b"img_15\xe9.jpg")), "2019-13-45", "1900", "9999-12",
    ]


def _argv(rng: random.Random, values: list[str], db: str) -> list[str]:
    pick = lambda: rng.choice(values)  # noqa: E731
    command = rng.choice(["search", "search", "similar", "describe", "status", "forget", "index", "repair",
                          "bogus", "search"])
    if command == "search":
        argv = ["search", pick()]
        for flag in ("-k", "--kind", "--folder", "--from", "--to", "--min-relevance"):
            if rng.random() < 0.3:
                argv += [flag, rng.choice([pick(), "image", "video", "3", "2019"])]
        argv += [f for f in ("--json", "--all", "--no-names") if rng.random() < 0.3]
    elif command in ("similar", "describe"):
        argv = [command, pick()]
        if rng.random() < 0.4:
            argv += ["-k", rng.choice([pick(), "2"])]
        if command == "describe" and rng.random() < 0.4:
            argv += ["--at", rng.choice([pick(), "1.5", "99999"])]
        argv += ["--json"] if rng.random() < 0.3 else []
    elif command == "forget":  # never --yes here: the library must stay whole
        argv = ["forget", pick()]
    elif command == "index":  # no folder is added: only values that are not folders
        argv = ["index", *[v for v in (pick(), pick()) if not os.path.isdir(v)][:1], "--quiet"]
        for flag in ("-k", "--batch-size", "--workers", "--max-frames", "--video-interval"):
            if rng.random() < 0.2:
                argv += [flag, pick()]
    elif command == "bogus":
        argv = [pick(), pick()]
    else:
        argv = [command]
        argv += ["--json"] if command == "status" and rng.random() < 0.5 else []
    if rng.random() < 0.15:
        argv += ["--model", rng.choice([pick(), "fake"])]
    if rng.random() < 0.1:
        argv += ["--device", pick()]
    if command in ("search", "similar", "describe", "status") and rng.random() < 0.15:
        argv += ["--db", pick()]  # read-only commands with a wrong --db: an error, nothing written
    else:
        argv += ["--db", db]
    return argv


def _library_state(capsys, db: str) -> tuple[int, list[str], list[str]]:
    capsys.readouterr()
    assert main(["status", "--json", "--db", db]) == 0
    status = json.loads(capsys.readouterr().out)
    return status["indexed"], status["folders"], sorted(f["path"] for f in status["failed"])


@pytest.mark.slow  # every command with random arguments, ~6 s a seed
@pytest.mark.parametrize("seed", [0, 1])
def test_fuzz_every_command(tmp_path, fake_models, capsys, seed):
    rng = random.Random(seed)
    root = tmp_path / "odd"
    _odd_files(root, rng)
    db = str(tmp_path / "lib.db")
    assert main(["index", str(root), "--db", db, "--quiet", "--model", "fake"]) == 0
    before = _library_state(capsys, db)
    assert before[0] == 13  # every readable file, whatever its name
    with sqlite3.connect(db) as conn:  # the symlinked sidecar's environment was not indexed
        assert not conn.execute("SELECT COUNT(*) FROM media WHERE caption LIKE '%PATH=%'").fetchone()[0]
    values = _values(tmp_path, root, rng)
    seen_codes = set()
    for _ in range(ROUNDS):
        argv = _argv(rng, values, db)
        capsys.readouterr()
        code = main(argv)
        err = capsys.readouterr().err
        seen_codes.add(code)
        assert code in (0, 1, 2), (argv, code, err)
        assert "Traceback" not in err and "internal error" not in err, (argv, err)
        if code == 2:
            errors = [line for line in err.splitlines() if line.startswith(("cots: error", "usage:", "cots "))]
            assert errors, (argv, err)
    assert {0, 2} <= seen_codes
    assert not [p for p in os.listdir(tmp_path) if p.startswith("missing")]
    assert _library_state(capsys, db) == before


@pytest.mark.parametrize("k", ["-1", "0", "x"])
def test_k_must_be_positive(tmp_path, capsys, k):
    assert main(["search", "cat", "-k", k, "--db", str(tmp_path / "lib.db")]) == 2
    err = capsys.readouterr().err
    assert "argument -k" in err and ("1 or more" in err or "whole number" in err)


@pytest.mark.slow  # two CLI subprocesses (~3 s)
def test_a_closed_pipe_is_quiet(tmp_path):
    """`cots status | head -1`: the reader leaves early; no traceback, no 'Exception ignored' noise."""
    db = tmp_path / "lib.db"
    subprocess.run([sys.executable, "-m", "app", "index", str(tmp_path / "none"), "--db", str(db)],
                   capture_output=True, timeout=120)  # creates an empty library (the folder is refused)
    reader, writer = os.pipe()
    os.close(reader)  # nobody will read: every write fails with EPIPE
    try:
        result = subprocess.run([sys.executable, "-m", "app", "status", "--db", str(db)], stdout=writer,
                                stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(writer)
    assert b"Traceback" not in result.stderr and b"Exception ignored" not in result.stderr, result.stderr
    assert result.returncode == 141 and not result.stderr.strip()


# -- the shipped model's text path (slow: builds cots-lite once) -------------------------------------
@pytest.fixture(scope="module")
def cots_lite_data(tmp_path_factory):
    """cots-lite built once, through its public name, into a data directory of its own."""
    from cots_core import load_model

    data_dir = tmp_path_factory.mktemp("cots-lite-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COTS_DATA_DIR", str(data_dir))
        load_model("cots-lite")
    return data_dir


@pytest.mark.slow
def test_fuzz_queries_through_the_shipped_models_lean_text_path(tmp_path, capsys, monkeypatch, cots_lite_data):
    """Before (issue 21): a query whose bytes are not UTF-8 crashed cots-lite's lean tokenizer (internal
    error: TypeError) although the fuzz test, which runs a tiny fake model, claimed to cover it."""
    from cots_core.lean_bert_text import BertTextTower
    from cots_core.loading import load_query_model
    from cots_core.text_query import TextFirstModel

    monkeypatch.setenv("COTS_DATA_DIR", str(cots_lite_data))
    model = load_query_model("cots-lite", device="cpu")
    assert isinstance(model, TextFirstModel) and isinstance(model.text_model.tower, BertTextTower)  # the lean path
    odd = [os.fsdecode(b"caf\xe9"), os.fsdecode(b"\xff\xfe"), "x\ud800y", "\x00", "\u202e\u200b", "😀" * 10,
           "x" * 5000, ""]
    vectors = model.encode_texts(odd)
    assert vectors.shape[0] == len(odd) and bool(vectors.isfinite().all())
    assert (model.encode_texts([os.fsdecode(b"caf\xe9")]) - model.encode_texts(["café"])).abs().max() < 1e-5

    root = tmp_path / "photos"
    root.mkdir()
    for i in range(3):
        noise_image(i).save(root / f"n{i}.png")
    db = str(tmp_path / "lib.db")
    assert main(["index", str(root), "--db", db, "--quiet", "--device", "cpu"]) == 0
    values = _values(tmp_path, root, random.Random(0))
    for query in values + odd[:-1]:
        capsys.readouterr()
        code = main(["search", query, "--db", db, "--device", "cpu", "-k", "2"])
        err = capsys.readouterr().err
        assert code in (0, 2), (query, code, err)
        assert "Traceback" not in err and "internal error" not in err, (query, err)
