"""The people signal on real photos: faces found where a person is, none on a cat or a coffee cup,
three on a made-up group of three, a clear error for an unreadable file."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

from app.library.signals.faces import FaceSignal

REAL_PHOTOS = Path(__file__).resolve().parents[1] / "data" / "real_photos"


@pytest.fixture(scope="module")
def signal() -> FaceSignal:
    return FaceSignal()


def photo(name: str) -> Image.Image:
    return Image.open(REAL_PHOTOS / name).convert("RGB")


def test_the_astronaut_has_a_face_over_her_head(signal):
    out = signal.extract(str(REAL_PHOTOS / "astronaut.jpg"), None)
    assert out.facts["faces"] >= 1 and out.facts["faces"] == len(out.boxes)
    best = out.boxes[0]
    assert best.label == "face" and 0.5 < best.score <= 1.0
    assert 0 <= best.x and 0 <= best.y and best.x + best.w <= 1 and best.y + best.h <= 1
    # her face is the top-middle of the photo (eyes at about x 0.44, y 0.24)
    assert best.x < 0.44 < best.x + best.w and best.y < 0.24 < best.y + best.h
    assert 0.01 < best.w * best.h < 0.1
    assert out.facts["face_area_max"] == pytest.approx(max(b.w * b.h for b in out.boxes), abs=1e-4)


@pytest.mark.parametrize("name", ["cat.jpg", "coffee.jpg"])
def test_no_face_on_a_cat_or_a_coffee_cup(signal, name):
    out = signal.extract(str(REAL_PHOTOS / name), photo(name))
    assert out.facts == {"faces": 0, "face_area_max": 0.0} and out.boxes == []


def test_a_group_of_three_pasted_faces_counts_three(signal):
    head = photo("astronaut.jpg").crop((150, 40, 300, 200))  # her head with some hair and neck
    group = photo("brick_wall.jpg").resize((900, 400))
    spots = [(60, 120), (375, 120), (690, 120)]
    for left, top in spots:
        group.paste(head, (left, top))
    out = signal.extract("group.jpg", group)
    assert out.facts["faces"] == 3
    centres = sorted(box.x + box.w / 2 for box in out.boxes)
    for centre, (left, _) in zip(centres, spots):
        assert abs(centre * 900 - (left + 75)) < 40


def test_exif_orientation_is_applied_when_reading_the_file(signal, tmp_path):
    # stored on its side with "rotate 90 clockwise" in EXIF: upright only once the orientation is applied
    stored = photo("astronaut.jpg").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    stored.save(path, exif=exif)
    assert signal.extract("sideways.jpg", stored).facts["faces"] == 0  # as stored: no upright face
    out = signal.extract(str(path), None)
    assert out.facts["faces"] >= 1 and out.boxes[0].y < 0.3


def test_unavailable_names_the_package_when_dlib_is_missing(monkeypatch):
    assert FaceSignal().unavailable() is None
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes `import dlib` raise ImportError
    reason = FaceSignal().unavailable()
    assert reason is not None and "dlib-bin" in reason and "pip install" in reason and "\n" not in reason


def test_a_large_photo_is_downscaled_and_boxes_stay_fractions(signal):
    small = photo("astronaut.jpg")
    large = small.resize((2048, 2048), Image.Resampling.BICUBIC)
    box_small, box_large = signal.extract("a.jpg", small).boxes[0], signal.extract("b.jpg", large).boxes[0]
    for a, b in ((box_small.x, box_large.x), (box_small.y, box_large.y), (box_small.w, box_large.w)):
        assert b == pytest.approx(a, abs=0.03)


def test_importing_the_signal_does_not_load_dlib():
    import subprocess

    code = "import sys, app.library.signals.faces; print('dlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.split() == ["False"]


def test_unavailable_names_the_models_package_when_it_is_missing(monkeypatch):
    from app.library.signals import faces

    monkeypatch.setattr(faces.importlib.util, "find_spec", lambda name: None)
    reason = FaceSignal().unavailable()
    assert reason is not None and "pip install face-recognition-models" in reason and "\n" not in reason


def test_the_astronauts_mission_patch_is_not_a_face_and_the_cameraman_is(signal):
    # HOG alone boxed her mission patch (margin 0.13) and missed the cameraman's half-turned face (-0.10)
    astronaut = signal.extract(str(REAL_PHOTOS / "astronaut.jpg"), None)
    assert astronaut.facts["faces"] == 1 and astronaut.boxes[0].y < 0.24 < astronaut.boxes[0].y + astronaut.boxes[0].h
    cameraman = signal.extract(str(REAL_PHOTOS / "cameraman.jpg"), None)
    assert cameraman.facts["faces"] == 1
    assert set(astronaut.stage_seconds) == {"detect", "landmarks", "identity"}
    assert len(astronaut.vectors) == 1 and astronaut.vectors[0].shape == (128,)


def test_a_crowd_keeps_at_most_max_faces(signal):
    head = photo("astronaut.jpg").crop((150, 40, 300, 200))
    crowd = photo("brick_wall.jpg").resize((1200, 800))
    for row in range(4):
        for column in range(6):
            crowd.paste(head.resize((110, 117)), (20 + 195 * column, 20 + 195 * row))
    capped = FaceSignal(max_faces=5).extract("crowd.jpg", crowd)
    assert capped.facts["faces"] == 5 and len(capped.boxes) == len(capped.vectors) == 5
    assert signal.extract("crowd.jpg", crowd).facts["faces"] >= 20  # the default cap (40) keeps them all


def test_a_tiny_face_gets_a_box_but_no_identity(signal):
    group = photo("brick_wall.jpg").resize((1280, 960))
    group.paste(photo("astronaut.jpg").crop((150, 40, 300, 200)).resize((60, 64)), (600, 400))
    out = FaceSignal(max_side=1280).extract("tiny.jpg", group)
    assert out.facts["faces"] == 1 and out.vectors == [None]  # ~30 px face: under MIN_IDENTITY_SIDE


def test_a_strong_hog_face_skips_the_cnn_check_and_weak_candidates_do_not(signal):
    # the astronaut's HOG candidates: her face (margin 1.22), the mission patch (0.13), a weaker one (-0.15)
    path = str(REAL_PHOTOS / "astronaut.jpg")
    every = FaceSignal(cnn_skip_margin=None).extract(path, None)
    shipped = signal.extract(path, None)
    assert every.cnn_checks == 3
    assert shipped.cnn_checks == 2  # her face is kept on HOG's word; the patch and the weak one are checked
    assert shipped.facts["faces"] == every.facts["faces"] == 1  # the patch is still dropped by the CNN
    assert shipped.boxes[0].x == pytest.approx(every.boxes[0].x) and shipped.vectors[0].shape == (128,)
    # skipping every candidate lets the patch in: proof the check did not run for skipped ones
    unchecked = FaceSignal(cnn_skip_margin=-1.0).extract(path, None)
    assert unchecked.cnn_checks == 0 and unchecked.facts["faces"] == 2


def test_the_runner_decodes_photos_large_enough_for_identity_with_ocr_off_too():
    """Landmarks and identity read the faces on the photo the runner decoded: with OCR turned off it must
    still be decoded at the size the face signal reads a file at by itself, not at its HOG copy's."""
    from app.library.signal_runner import second_pass_side
    from app.library.signals.faces import MAX_SIDE
    from app.library.signals.ocr import OcrSignal

    assert second_pass_side([FaceSignal()]) == 2 * MAX_SIDE
    assert second_pass_side([FaceSignal(), OcrSignal()]) == max(2 * MAX_SIDE, OcrSignal().max_side)


def _hog_candidates(detector, names: list[str]) -> list:
    import numpy as np

    found = []
    for name in names:
        small = photo(name)
        small.thumbnail((640, 640))
        rects, margins, kinds = detector.run(np.asarray(small), 1, -0.5)
        found.append(([(r.left(), r.top(), r.right(), r.bottom()) for r in rects], list(margins), list(kinds)))
    return found


def test_the_shipped_hog_detector_is_dlibs_own_and_a_damaged_copy_falls_back_to_it(monkeypatch, tmp_path):
    """resources/faces/frontal_face_hog.svm (dlib's detector in its binary form, ~1 ms to load against 0.26 s)
    proposes exactly what ``dlib.get_frontal_face_detector()`` does, candidates and margins alike; a copy that
    is missing, altered or damaged is not used."""
    import dlib

    import app.library.signals.faces as faces

    names = ["astronaut.jpg", "cameraman.jpg", "grace_hopper.jpg", "motorcycle.jpg", "cat.jpg"]
    own = _hog_candidates(dlib.get_frontal_face_detector(), names)
    assert sum(len(rects) for rects, _, _ in own) >= 3  # faces (and weak candidates) to compare
    assert _hog_candidates(faces.frontal_face_detector(), names) == own
    shipped = faces.resource_path(*faces.FACE_HOG_FILE).read_bytes()
    loaded = []
    monkeypatch.setattr(dlib, "fhog_object_detector", lambda path: loaded.append(path) or dlib.get_frontal_face_detector())
    copy = tmp_path / "frontal_face_hog.svm"
    monkeypatch.setattr(faces, "resource_path", lambda *parts: copy)
    for content in (None, shipped[:-1] + bytes([shipped[-1] ^ 1]), shipped[:50_000]):  # missing, altered, cut
        copy.unlink(missing_ok=True)
        if content is not None:
            copy.write_bytes(content)
        assert _hog_candidates(faces.frontal_face_detector(), names[:1]) == own[:1]
    assert loaded == []  # none of them reached dlib's loader
