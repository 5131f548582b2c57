"""Bad input never stops a run: each kind is recorded with its reason and retried only when it changes."""
from __future__ import annotations

import io
import os

import cv2
import numpy as np
from fakes import noise_image, run_indexer, solid
from PIL import Image

from app.library.scanner import LibraryScanner
from cots_core.media import read_image


def _make_bad_folder(root):
    root.mkdir()
    solid("red").save(root / "good.jpg")
    (root / "zero.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("this is a text file, not a photo\n" * 10)
    (root / "garbage.png").write_bytes(os.urandom(3000))
    buffer = io.BytesIO()
    noise_image(1, (400, 300)).save(buffer, "JPEG", quality=95)
    (root / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    Image.new("1", (4000, 3000)).save(root / "bomb.png")  # 12 MP of nothing, a few KB on disk
    (root / "broken.mp4").write_bytes(os.urandom(5000))
    writer = cv2.VideoWriter(str(root / "empty.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 48))
    writer.release()  # a container with no frames (or no file at all, depending on the codec)
    if not (root / "empty.mp4").exists():
        (root / "empty.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    (root / "locked").mkdir()
    solid("blue").save(root / "locked" / "inside.jpg")
    (root / "vanishing.jpg").write_bytes((root / "good.jpg").read_bytes() + b"\0")
    return root


def test_every_bad_input_is_recorded_and_the_rest_indexed(library, encoder, tmp_path, monkeypatch):
    root = _make_bad_folder(tmp_path / "bad")
    library.add_folder(root)
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")  # tests run as root: chmod would not stop us
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    real_scan = LibraryScanner.scan

    def scan_then_vanish(self, roots):
        result = real_scan(self, roots)
        (root / "vanishing.jpg").unlink()  # gone between the scan and the read
        return result

    monkeypatch.setattr(LibraryScanner, "scan", scan_then_vanish)
    report = run_indexer(library, encoder, max_pixels=10_000_000)
    monkeypatch.setattr(LibraryScanner, "scan", real_scan)
    assert report.added == 1 and not report.cancelled
    failed = {os.path.basename(f.path): f.error for f in library.status().failed}
    expected = {
        "zero.jpg": "empty file", "text.jpg": "not an image", "garbage.png": "not an image",
        "truncated.jpg": "truncated", "bomb.png": "too large", "broken.mp4": "could not be opened",
        "empty.mp4": "", "locked": "cannot be read", "vanishing.jpg": "vanished",
    }
    assert set(expected) <= set(failed), failed
    for name, words in expected.items():
        assert words in failed[name], (name, failed[name])
    assert len(library.vectors("media")) == 1

    # Unchanged failures are not retried; a fixed file is.
    monkeypatch.setattr(os, "scandir", real_scandir)
    report = run_indexer(library, encoder, max_pixels=10_000_000)
    assert report.failed == 0 and report.added == 1  # the folder is readable now: inside.jpg
    solid("green").save(root / "text.jpg")
    report = run_indexer(library, encoder, max_pixels=10_000_000)
    assert report.updated == 1 and report.failed == 0
    failed = {os.path.basename(f.path) for f in library.status().failed}
    assert "text.jpg" not in failed and "locked" not in failed and "vanishing.jpg" not in failed


def test_rows_under_an_unreadable_folder_are_kept(library, encoder, tmp_path, monkeypatch):
    root = tmp_path / "r"
    (root / "sub").mkdir(parents=True)
    solid("red").save(root / "sub" / "a.jpg")
    library.add_folder(root)
    run_indexer(library, encoder)
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p=".": (_ for _ in ()).throw(PermissionError(13, "denied"))
                        if os.fspath(p).endswith("sub") else real_scandir(p))
    report = run_indexer(library, encoder)
    assert report.removed == 0 and len(library.vectors("media")) == 1


def test_image_reader_details(tmp_path):
    # EXIF orientation is applied; a JPEG is decoded at reduced size (draft) but reports its real size.
    image = Image.fromarray(np.zeros((200, 1600, 3), np.uint8))
    exif = Image.Exif()
    exif[274] = 6  # rotate 90 degrees
    exif[0x8769] = {36867: "2019:06:30 12:00:00"}
    path = tmp_path / "rot.jpg"
    image.save(path, exif=exif)
    decoded = read_image(path.read_bytes(), target_size=64)
    assert (decoded.width, decoded.height) == (200, 1600)  # as shown: after the rotation (issue 11)
    assert decoded.frames[0].height > decoded.frames[0].width  # rotated
    assert max(decoded.frames[0].size) < 1600  # reduced
    assert decoded.captured_at is not None
    # GIF: first frame; palette/alpha images come out RGB.
    frames = [Image.new("P", (20, 20), i) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert read_image(tmp_path / "anim.gif").frames[0].mode == "RGB"
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(tmp_path / "alpha.webp")
    assert read_image(tmp_path / "alpha.webp").frames[0].mode == "RGB"
    Image.new("I;16", (10, 10), 40000).save(tmp_path / "deep.tif")
    assert read_image(tmp_path / "deep.tif").frames[0].mode == "RGB"
    Image.new("RGB", (10, 10)).save(tmp_path / "plain.bmp")
    assert read_image(tmp_path / "plain.bmp").width == 10
