"""Large and odd files: size and header are checked before reading, nothing is read whole, FIFOs never block."""
from __future__ import annotations

import io
import os
import threading
import tracemalloc

import numpy as np
import pytest
from fakes import run_indexer, solid
from PIL import Image

from app.library.errors import MediaError
from cots_core import image_files, media
from cots_core.media import check_image_file, read_image


def _sparse(path, size: int, head: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(head)
    os.truncate(path, size)  # a hole: costs no disk and no time


def test_huge_files_are_refused_before_they_are_read(library, encoder, tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    solid("red").save(root / "ok.jpg")
    _sparse(root / "huge.jpg", 2 * 2**30 + 1, b"\xff\xd8\xff\xe0")  # 2 GiB, starts like a JPEG
    _sparse(root / "zeros.png", 200 * 2**20, b"\x89PNG\r\n\x1a\n")  # under the limit, broken after the header
    _sparse(root / "fake.jpg", 300 * 2**20, b"not an image at all")
    library.add_folder(root)
    tracemalloc.start()
    try:
        report = run_indexer(library, encoder, workers=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.added == 1 and report.failed == 3
    failed = {os.path.basename(f.path): f.error for f in library.failures()}
    assert "too large" in failed["huge.jpg"] and "not an image" in failed["fake.jpg"]
    assert failed["zeros.png"]
    assert peak < 64 * 2**20, f"peak Python memory {peak / 2**20:.0f} MiB: a file was read whole"


def test_reads_are_bounded(tmp_path, monkeypatch):
    path = tmp_path / "huge.jpg"
    _sparse(path, 2 * 2**30, b"\xff\xd8\xff\xe0")
    with pytest.raises(MediaError, match="too large"):
        check_image_file(path)
    reads = []
    real_open = open

    def spying_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "b" in mode:
            real_read = handle.read

            def read(n=-1):
                reads.append(n)
                return real_read(n)

            try:
                handle.read = read
            except AttributeError:
                pass
        return handle

    monkeypatch.setattr("builtins.open", spying_open)
    assert media.content_hash(path)
    assert reads and all(0 <= n <= media.HASH_CHUNK for n in reads)  # never read(-1): never the whole file


def test_exif_rotated_photo_stores_its_shown_size(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise
    Image.fromarray(np.zeros((300, 800, 3), np.uint8)).save(tmp_path / "r.jpg", exif=exif)
    decoded = read_image(tmp_path / "r.jpg")
    assert (decoded.width, decoded.height) == (300, 800)
    assert decoded.frames[0].height > decoded.frames[0].width


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(error=_error(lambda: media.read_media(fifo))),
                              daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "reading a FIFO blocked"
    assert "not a regular file" in str(outcome["error"])


def _error(call):
    try:
        call()
    except MediaError as error:
        return error
    return None


def test_a_large_file_gets_a_bounded_header_search(tmp_path, monkeypatch):
    """Pillow skips junk before a JPEG header one byte at a time; a large file may only make it read so far."""
    monkeypatch.setattr(image_files, "HEADER_BUDGET", 1 << 20)
    _sparse(tmp_path / "zeros.jpg", 4 << 20, b"\xff\xd8\xff\xe0")
    with pytest.raises(MediaError, match="no image header in the first 1 MiB"):
        read_image(tmp_path / "zeros.jpg")
    buffer = io.BytesIO()
    solid("red", (80, 60)).save(buffer, "JPEG")
    (tmp_path / "trailing.jpg").write_bytes(buffer.getvalue())
    os.truncate(tmp_path / "trailing.jpg", 4 << 20)  # a real photo followed by megabytes of anything
    decoded = read_image(tmp_path / "trailing.jpg")
    assert (decoded.width, decoded.height) == (80, 60)


def test_the_header_read_of_the_second_pass_keeps_the_limits(tmp_path, monkeypatch):
    """The second pass sizes its decode from the image header (``decode_for_second_pass``) through
    ``cots_core.media.image_size``: the header budget and the size limits of ``read_image`` hold there too."""
    from app.library.signal_runner import decode_for_second_pass

    solid("red", (80, 60)).save(tmp_path / "red.jpg")
    assert media.image_size(tmp_path / "red.jpg") == (80, 60)
    with pytest.raises(MediaError, match="too large"):
        media.image_size(tmp_path / "red.jpg", max_pixels=100)
    (tmp_path / "notes.jpg").write_text("not a photo at all")
    with pytest.raises(MediaError, match="not an image"):
        media.image_size(tmp_path / "notes.jpg")
    monkeypatch.setattr(image_files, "HEADER_BUDGET", 1 << 20)
    _sparse(tmp_path / "zeros.jpg", 4 << 20, b"\xff\xd8\xff\xe0")
    with pytest.raises(MediaError, match="no image header in the first 1 MiB"):
        media.image_size(tmp_path / "zeros.jpg")
    with pytest.raises(MediaError, match="no image header in the first 1 MiB"):
        decode_for_second_pass(str(tmp_path / "zeros.jpg"))
