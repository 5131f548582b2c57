"""Faces in videos: the faces signal reads a video's frames at the times the index sampled (its stored
segments), keeps a few faces per person per video, and a named person's search returns the video at the
moment they appear. The grouping rules are checked on made-up vectors; the rest end to end through the real
`cots` CLI with the real faces signal on a clip made of real photos (tests/data/people), the fake encoder
standing in for the search model."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.library.face_grouping import MAX_VIDEO_FACES, keep_video_faces
from app.library.search import person_moment
from app.library.signals.base import Box

DATA = Path(__file__).resolve().parents[1] / "data"
FPS = 5
FRAME = (480, 360)
# the clip's parts, 4 s each: the index samples a frame every 2 s, so two frames per part
PARTS = ["coffee", "obama2", "biden", "coffee"]
PHOTO = {"coffee": DATA / "real_photos" / "coffee.jpg", "obama2": DATA / "people" / "obama2.jpg",
         "biden": DATA / "people" / "biden.jpg"}


def write_clip(path: Path, parts: list[str], seconds_each: float = 4.0) -> None:
    """An mp4 whose consecutive parts each show one photo (letterboxed into the frame)."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, FRAME)
    for part in parts:
        photo = Image.open(PHOTO[part]).convert("RGB")
        photo.thumbnail(FRAME)
        frame = Image.new("RGB", FRAME)
        frame.paste(photo, ((FRAME[0] - photo.width) // 2, (FRAME[1] - photo.height) // 2))
        pixels = cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2BGR)
        for _ in range(int(seconds_each * FPS)):
            writer.write(pixels)
    writer.release()


# -- the rules, on made-up faces -----------------------------------------------------------------------

def _face(at_s: float, score: float = 0.9) -> Box:
    return Box(0.1, 0.1, 0.2, 0.2, score, label="face", at_s=at_s)


def _vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return vector / np.linalg.norm(vector)  # two of these are ~1.4 apart: two people


def test_a_person_on_every_frame_keeps_their_best_face_per_window():
    anna = _vector(1)
    # a frame every 2 s for 30 s: 15 faces of one person, slightly different each time
    boxes = [_face(2.0 * i, 0.5 + 0.01 * (i % 5)) for i in range(15)]
    vectors = [anna + 0.01 * _vector(100 + i) for i in range(15)]
    kept = keep_video_faces(boxes, vectors, window_s=10.0)
    assert [boxes[i].at_s for i in kept] == [8.0, 18.0, 28.0]  # the best of [0, 10), [10, 20), [20, 30)


def test_two_people_each_keep_their_own_faces_and_a_crowd_keeps_one_face_each_first():
    anna, bob = _vector(1), _vector(2)
    boxes = [_face(0.0, 0.9), _face(0.0, 0.8), _face(12.0, 0.7)]
    assert keep_video_faces(boxes, [anna, bob, anna], window_s=10.0) == [0, 1, 2]
    # a crowd over a long video: the cap keeps each person's best face before anyone's second
    people = [_vector(10 + p) for p in range(MAX_VIDEO_FACES + 5)]
    boxes = [_face(t, 0.6) for t in (0.0, 30.0) for _ in people]
    vectors = [v for _ in (0.0, 30.0) for v in people]
    kept = keep_video_faces(boxes, vectors, window_s=10.0)
    assert len(kept) == MAX_VIDEO_FACES and all(boxes[i].at_s == 0.0 for i in kept)


def test_faces_too_small_to_recognise_come_after_the_recognised_ones():
    boxes = [_face(0.0, 0.99), _face(0.0, 0.5)]
    assert keep_video_faces(boxes, [None, _vector(1)], max_faces=1) == [1]


def test_the_moment_is_where_everyone_named_is_and_the_best_segment_when_they_are_on_it():
    anna, bob = 1, 2
    faces = [(anna, 4.0, 0.3), (bob, 8.0, 0.2), (anna, 8.0, 0.1), (bob, 12.0, 0.05)]
    assert person_moment(faces, [anna], None) == 4.0  # her largest face
    assert person_moment(faces, [anna], 8.0) == 8.0  # the query's best segment shows her: kept
    assert person_moment(faces, [anna], 12.0) == 4.0  # it does not: her moment
    assert person_moment(faces, [anna, bob], None) == 8.0  # the one frame with both
    assert person_moment([], [anna], None) is None


# -- end to end, with the real faces signal ------------------------------------------------------------


@pytest.mark.real_signals
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_person_in_a_video_is_found_by_name_at_the_moment_they_appear(tmp_path, cots):
    album = tmp_path / "album"
    album.mkdir()
    shutil.copy(DATA / "people" / "obama.jpg", album / "IMG_0001.jpg")
    write_clip(album / "clip.mp4", PARTS)
    write_clip(album / "empty.mp4", ["coffee"])  # a video without anyone in it
    assert cots("index", str(album), "--quiet")[0] == 0

    people = json.loads(cots("people", "--json", "--all")[1])
    obama = next(p for p in people if "IMG_0001.jpg" in {os.path.basename(q) for q in p["photo_paths"]})
    assert sorted(os.path.basename(p) for p in obama["photo_paths"]) == ["IMG_0001.jpg", "clip.mp4"]
    shown = json.loads(cots("people", "show", str(obama["id"]), "--json")[1])
    moments = sorted(f["at_s"] for f in shown["faces"] if f["path"].endswith("clip.mp4"))
    assert moments and all(4.0 <= t < 8.0 for t in moments)  # his part of the clip, not another's
    assert all(f["at_s"] is None for f in shown["faces"] if f["path"].endswith(".jpg"))
    assert len(people) == 2  # Obama (the photo and the clip) and Biden (the clip): no one from the coffee
    assert "at 0:0" in cots("people", "show", str(obama["id"]))[1]

    assert cots("people", "name", str(obama["id"]), "Barack")[0] == 0
    hits = json.loads(cots("search", "Barack", "--json")[1])
    assert sorted(os.path.basename(h["path"]) for h in hits) == ["IMG_0001.jpg", "clip.mp4"]
    clip = next(h for h in hits if h["path"].endswith("clip.mp4"))
    assert 4.0 <= clip["timestamp"] < 8.0 and "person" in clip["matched"]
    hits = json.loads(cots("search", "red", "--person", "barack", "--json", "--all")[1])
    clip = next(h for h in hits if h["path"].endswith("clip.mp4"))
    assert 4.0 <= clip["timestamp"] < 8.0
    status, out, _ = cots("search", "Barack")
    assert status == 0 and "clip.mp4" in out and " at 0:0" in out

    # the empty video and the clip were both read (no error rows), and the faceless one has no faces
    status = json.loads(cots("status", "--json")[1])
    assert status["people"] == {"people": 2, "named": 1}
    from app.library import Library
    from app.library.storage.signals import media_facts

    with Library(cots.db) as library:
        conn = library.db.conn
        rows = dict(conn.execute("SELECT m.path, r.status FROM media m JOIN signal_results r ON r.media_id = m.id "
                                 "AND r.signal = 'faces'").fetchall())
        assert {os.path.basename(p): s for p, s in rows.items()} == {
            "IMG_0001.jpg": "ok", "clip.mp4": "ok", "empty.mp4": "ok"}
        empty_id = conn.execute("SELECT id FROM media WHERE path LIKE '%empty.mp4'").fetchone()[0]
        assert media_facts(conn, [empty_id])[empty_id]["faces"] == 0
        assert conn.execute("SELECT COUNT(*) FROM faces WHERE media_id = ?", (empty_id,)).fetchone()[0] == 0
        # a video's boxes feed the people, never the boxes drawn on its preview
        assert conn.execute("SELECT COUNT(*) FROM signal_boxes b JOIN media m ON m.id = b.media_id "
                            "WHERE m.kind = 'video'").fetchone()[0] == 0


@pytest.mark.real_signals
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_video_whose_frames_stop_decoding_midway_keeps_the_faces_of_the_frames_that_do(tmp_path, cots,
                                                                                       monkeypatch):
    import app.library.signal_runner as runner

    album = tmp_path / "album"
    album.mkdir()
    write_clip(album / "clip.mp4", ["obama2", "coffee", "coffee", "biden"])
    real = runner.video_frames_at

    def cut_short(path, seconds, **options):  # as a file damaged past 4 s would: later frames do not decode
        return real(path, [s for s in seconds if s < 4.0], **options)

    monkeypatch.setattr(runner, "video_frames_at", cut_short)
    assert cots("index", str(album), "--quiet")[0] == 0
    shown = json.loads(cots("people", "--json", "--all")[1])
    assert len(shown) == 1  # Obama from the frames that decoded; Biden's frames never did
    faces = json.loads(cots("people", "show", str(shown[0]["id"]), "--json")[1])["faces"]
    assert faces and all(f["at_s"] < 4.0 for f in faces)

    # nothing decodes at all: an error row for the signal, the video itself stays searchable
    monkeypatch.setattr(runner, "video_frames_at", lambda path, seconds, **options: [])
    write_clip(album / "other.mp4", ["biden"])
    status, out, _ = cots("index", str(album), "--quiet")
    assert status == 0
    from app.library import Library
    from app.library.storage.signals import signal_failures

    with Library(cots.db) as library:
        failures = signal_failures(library.db.conn)
        assert [(s, os.path.basename(p)) for s, p, _ in failures] == [("faces", "other.mp4")]
        assert "none of its sampled frames decodes" in failures[0][2]
        assert library.db.conn.execute("SELECT status FROM media WHERE path LIKE '%other.mp4'").fetchone()[0] == "ok"
