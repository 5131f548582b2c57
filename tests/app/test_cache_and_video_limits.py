"""Issue 30: video frames under the image pixel limit, the thumbnail cache's files trusted for nothing, and a
folder of very many empty files."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fakes import run_indexer, solid, write_video

from app.gui.thumbs import ThumbnailCache
from cots_core import media, video_files
from cots_core.media import MediaError, read_video, video_frame_at

ROOT = Path(__file__).resolve().parents[2]


# -- video pixels --------------------------------------------------------------------------------------
def test_video_frames_over_the_pixel_limit_are_refused_from_the_header(tmp_path, monkeypatch):
    """Was: frames decoded whole whatever their size (a 1.7 MB AVI of 12000x12000 frames: +1.1 GB a file).
    The frame size the container declares is checked against the image limit before a frame is decoded."""
    clip = tmp_path / "clip.mp4"
    write_video(clip, ["red", "blue"], seconds_each=1.0, size=(64, 48))
    assert read_video(clip).width == 64  # under the default limit: read as before

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("a frame was decoded before the frame size was checked")

    monkeypatch.setattr(video_files, "_frames_by_seeking", no_decoding)
    with pytest.raises(MediaError, match=r"video frame too large: 64x48 pixels is over the limit of 3,000"):
        read_video(clip, max_pixels=3000)
    with pytest.raises(MediaError, match="video frame too large"):
        video_frame_at(clip, 0.5, max_pixels=3000)  # the GUI's thumbnails and previews of a moment
    with pytest.raises(MediaError, match="video frame too large"):
        media.read_media(clip, max_pixels=3000)  # the registry passes the limit on, as for images


def test_the_indexer_refuses_an_oversized_video_in_one_line(library, encoder, photos):
    write_video(photos / "clip.mp4", ["red"], seconds_each=1.0, size=(64, 48))
    solid("red", (40, 30)).save(photos / "small.jpg")  # 1200 pixels: under the limit below
    library.add_folder(photos)
    report = run_indexer(library, encoder, max_pixels=2000)
    failures = {Path(f.path).name: f.error for f in library.failures()}
    assert "video frame too large: 64x48 pixels is over the limit of 2,000" in failures["clip.mp4"]
    assert "\n" not in failures["clip.mp4"]
    assert report.added >= 1 and "small.jpg" not in failures


# -- the thumbnail cache -------------------------------------------------------------------------------
_WORKER = textwrap.dedent("""
    import os, sys
    from app.gui.results import ResultsModel
    from app.gui.thumbs import ThumbnailCache

    photo, cache = sys.argv[1], sys.argv[2]
    thumbs = ThumbnailCache(cache, size=64)
    target = thumbs.cached(photo)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(target)

    class Model:  # ResultsModel's worker function reads only ``thumbs``
        pass

    model = Model()
    model.thumbs = thumbs
    image = ResultsModel._decoded(model, photo, None, 32)
    print(image.isNull(), image.width(), target.is_file())
""")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_in_the_thumbnail_cache_is_replaced_without_blocking(tmp_path):
    """Was: the thumbnail worker blocked reading the FIFO, closing the app waited 30 s for the pool, and the
    process never exited. The worker runs in a child process here, so a hang fails the test instead of it."""
    photo = tmp_path / "red.jpg"
    solid("red", (120, 90)).save(photo)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    try:
        result = subprocess.run([sys.executable, "-c", _WORKER, str(photo), str(tmp_path / "cache")],
                                capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail("the thumbnail worker blocked on a FIFO in the cache")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "32", "True"]  # made again, as a plain file, and shown


def test_a_damaged_or_linked_thumbnail_is_made_again(tmp_path):
    photo = tmp_path / "red.jpg"
    solid("red", (120, 90)).save(photo)
    thumbs = ThumbnailCache(tmp_path / "cache", size=64)
    target = thumbs.get(str(photo))
    good = target.read_bytes()
    target.unlink()
    target.symlink_to("/dev/zero")
    assert thumbs.read(str(photo)) == good and not target.is_symlink()
    target.write_bytes(b"")  # empty (a crash of another program, a full disk)
    assert thumbs.read(str(photo)) == good
    target.write_bytes(b"not a jpeg")
    thumbs.discard(str(photo))  # what the grid does when the cached bytes do not decode
    assert thumbs.read(str(photo)) == good


# -- very many empty files -----------------------------------------------------------------------------
EMPTY_FILES = int(os.environ.get("COTS_TEST_EMPTY_FILES", "5000"))


@pytest.mark.slow
def test_a_folder_of_many_empty_files_is_counted_in_bounded_time_and_memory(library, encoder, tmp_path):
    """A case that held (issue 30 tried 200,000 empty files; see docs/HOSTILE_INPUTS.md for that run): each
    is refused before it is read, counted, and named once in the library's failures."""
    import tracemalloc

    folder = tmp_path / "empty"
    folder.mkdir()
    for i in range(EMPTY_FILES):
        (folder / f"{i:06d}.{'jpg' if i % 2 else 'mp4'}").touch()
    library.add_folder(folder)
    tracemalloc.start()
    started = time.perf_counter()
    report = run_indexer(library, encoder)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert report.added == 0 and report.failed == EMPTY_FILES
    errors = {f.error for f in library.failures()}
    assert errors == {"empty file (0 bytes)"}
    print(f"{EMPTY_FILES} empty files: {seconds:.1f} s, traced peak {peak / 2**20:.1f} MiB")
    assert seconds < 0.01 * EMPTY_FILES + 30  # measured: ~1 ms a file on 2 shared cores
    assert peak < (64 << 20) + EMPTY_FILES * 2048  # a few hundred bytes a file, never the files themselves
    again = run_indexer(library, encoder)  # unchanged failures are not read again
    assert again.failed == 0 and again.unchanged == EMPTY_FILES
