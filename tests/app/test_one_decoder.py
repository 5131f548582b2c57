"""One decoder (issue 22): the trainer reads images and videos through ``cots_core.media`` as the app's
indexer does, so a bad file meets the same limits and gets the same ``MediaError`` reason in both."""
from __future__ import annotations

import io
import os

import pytest
from fakes import noise_image, run_indexer, solid
from PIL import Image

from cots_core.media import MEDIA_KINDS, MediaError, ReadOptions, media_kind
from trainer.data import load_records
from trainer.data.media import check_media, load_image, read_video_frames

EXPECTED_REASONS = {"truncated.jpg": "truncated image", "bomb.png": "unreadable image",
                    "broken.mp4": "video does not open"}


def _bad_folder(root):
    root.mkdir()
    solid("red").save(root / "good.jpg")
    buffer = io.BytesIO()
    noise_image(1, (400, 300)).save(buffer, "JPEG", quality=95)
    (root / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    Image.new("1", (12_000, 10_000)).save(root / "bomb.png")  # 120 MP (over the 100 MP limit) in a few KB
    (root / "broken.mp4").write_bytes(os.urandom(5000))
    for name in ("good.jpg", *EXPECTED_REASONS):
        (root / name).with_suffix(".txt").write_text(f"a caption for {name}\n")
    return root


def _indexer_error(path, image_size: int) -> MediaError:
    """What the indexer's decode step (``Indexer._decode``: the kind's check, then its reader) raises."""
    kind = MEDIA_KINDS[media_kind(path)]
    with pytest.raises(MediaError) as raised:
        kind.check(path)
        kind.read(path, ReadOptions(image_size))
    return raised.value


def test_a_bad_file_gets_the_same_reason_from_the_trainer_and_the_indexer(library, encoder, tmp_path):
    root = _bad_folder(tmp_path / "bad")
    library.add_folder(root)
    report = run_indexer(library, encoder)
    assert report.added == 1
    recorded = {os.path.basename(f.path): f.error for f in library.status().failed}
    assert set(recorded) == set(EXPECTED_REASONS)

    for name, reason in EXPECTED_REASONS.items():
        path = root / name
        indexer = _indexer_error(path, encoder.image_size)
        assert str(indexer) == recorded[name]  # the error the library recorded for the file
        with pytest.raises(MediaError) as checked:  # the trainer's check while loading a dataset
            check_media(path, media_kind(path))
        with pytest.raises(MediaError) as decoded:  # and its decoding while training
            load_image(path) if media_kind(path) == "image" else read_video_frames(path)
        assert indexer.reason == checked.value.reason == decoded.value.reason == reason, name
        assert str(path) in str(checked.value) and str(path) in str(decoded.value)
        if name != "truncated.jpg":  # the same limit and the same words (the check does not decode a JPEG)
            assert recorded[name] in str(checked.value) and recorded[name] in str(decoded.value)

    records, load_report = load_records(root)  # the trainer's load report counts bad files by those reasons
    assert [os.path.basename(r.path) for r in records] == ["good.jpg"]
    assert load_report.skipped == {reason: 1 for reason in EXPECTED_REASONS.values()}


def test_the_face_signal_reads_photos_with_the_same_limits(tmp_path):
    from app.library.signals.base import SignalError
    from app.library.signals.faces import load_rgb

    root = _bad_folder(tmp_path / "bad")
    with pytest.raises(SignalError, match="image too large"):  # it opened any size before
        load_rgb(str(root / "bomb.png"), None, 640)
    with pytest.raises(SignalError, match="truncated"):
        load_rgb(str(root / "truncated.jpg"), None, 640)
    noise_image(2, (3000, 2000)).save(tmp_path / "big.jpg")
    assert load_rgb(str(tmp_path / "big.jpg"), None, 640).size == (1500, 1000)  # 1/2: the smallest scale >= 640
    assert load_rgb(str(tmp_path / "big.jpg"), None).size == (3000, 2000)
