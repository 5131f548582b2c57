"""The files cots keeps itself (issue 30): read only as plain files of a bounded size, never blocking."""
from __future__ import annotations

import os
import time

import pytest
from hang_guard import finishes_within

from cots_core import model_ids

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and O_NONBLOCK are POSIX")


def test_a_cache_file_is_read_only_as_a_bounded_regular_file(tmp_path):
    from cots_core.folder_safety import NotARegularFile, read_regular_file

    plain = tmp_path / "plain.json"
    plain.write_bytes(b"{}")
    assert read_regular_file(plain, 2) == b"{}"
    with pytest.raises(NotARegularFile, match="over the limit"):
        read_regular_file(plain, 1)
    zero = tmp_path / "image.onnx"
    zero.symlink_to("/dev/zero")  # was: read until memory ran out
    started = time.perf_counter()
    with pytest.raises(NotARegularFile, match="symbolic link"):
        read_regular_file(zero, 1 << 30)
    inside = tmp_path / "link.json"
    inside.symlink_to(plain)  # cots writes no links: even one to a plain file is not its file
    with pytest.raises(NotARegularFile):
        read_regular_file(inside, 1 << 20)
    fifo = tmp_path / "manifest.json"
    os.mkfifo(fifo)
    with pytest.raises(NotARegularFile, match="not a regular file"):
        finishes_within(10, lambda: read_regular_file(fifo, 1 << 20), [fifo])
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing", 10)
    assert time.perf_counter() - started < 5


def test_a_fifo_as_a_stored_model_id_is_replaced_without_blocking(tmp_path, monkeypatch):
    """Was: ``cots search`` hung on reading ``cache/model-ids/<id>.json``."""
    monkeypatch.setenv("COTS_DATA_DIR", str(tmp_path / "data"))
    checkpoint = tmp_path / "model"
    checkpoint.mkdir()
    for name in model_ids.CHECKPOINT_FILES:
        (checkpoint / name).write_bytes(b"x")
    model_ids.remember_model_id(checkpoint, "abc")
    assert model_ids.known_model_id(checkpoint) == "abc"
    record = model_ids._record_path(checkpoint)
    record.unlink()
    os.mkfifo(record)
    assert finishes_within(10, lambda: model_ids.known_model_id(checkpoint), [record]) is None
    assert not record.exists()  # the damaged entry is gone: computed and written again
    model_ids.remember_model_id(checkpoint, "abc")
    assert record.is_file() and model_ids.known_model_id(checkpoint) == "abc"
    record.unlink()
    record.symlink_to("/dev/zero")
    assert finishes_within(10, lambda: model_ids.known_model_id(checkpoint), []) is None
    assert not record.is_symlink()
