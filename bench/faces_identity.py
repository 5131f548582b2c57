"""Grouping faces into people, measured on real photos of the same people taken at different times.

    nice -n 10 .venv/bin/python bench/faces_identity.py [--work DIR] [--json bench/results/faces_identity.json]

Photos (all real, from installable packages; fetched by bench/signals_faces.py's helpers into --work):
- the `face_recognition` 1.3.0 sdist: Barack Obama in five photos (three portraits from different days, two
  cut by the frame; 32bit.png is left out: it is obama2.jpg re-encoded), Joe Biden in one;
- Debian `opencv-doc`: a stereo-calibration session, one person holding a chessboard in front of two
  cameras at 13 moments (left01-14.jpg, right01-14.jpg: frames of one sitting, the face often hidden by the
  board); two basketball frames (the player facing the camera in both); a footballer;
- the `insightface` 2.1 sdist: a group of six different people (t1.jpg), a face crop;
- the repository's astronaut, Grace Hopper and cameraman.
Faces come from the faces signal (``FaceSignal``: HOG + CNN check, landmarks, ResNet vector). Who is who is
labelled by file (one person per file, except the group photo, whose six faces are six people).

Grouping is the library's own (``face_grouping.store_faces`` on a scratch library, photo by photo), over 20
random photo orders. Pairwise precision: of the face pairs put in one person, the share that are one person;
recall: of the face pairs that are one person, the share put together. The join distance is chosen on one
half of the people (split by a hash of their label) and reported on the other, both ways.
Also measured: how far a face's vector moves when the photo is smaller (the resolution identity needs).
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from signals_faces import fetch_deb, fetch_sdist  # noqa: E402

from app.library import Library  # noqa: E402
from app.library.people import store_faces  # noqa: E402
from app.library.signals.base import Box  # noqa: E402
from app.library.signals.faces import FaceSignal, load_rgb  # noqa: E402

THRESHOLDS = [round(0.30 + 0.05 * step, 2) for step in range(9)]  # 0.30 .. 0.70
ORDERS = 20


def photos(work: Path) -> list[tuple[Path, str]]:
    """(photo, who is in it: a label, or "*" for a group of different people)."""
    tests = fetch_sdist("face_recognition==1.3.0", work) / "tests/test_images"
    samples = fetch_deb("opencv-doc", work) / "usr/share/doc/opencv-doc/examples/data"
    images = fetch_sdist("insightface==2.1", work) / "insightface/data/images"
    out = [(tests / f"{name}.jpg", "obama") for name in ("obama", "obama2", "obama3", "obama_partial_face",
                                                        "obama_partial_face2")]
    out.append((tests / "biden.jpg", "biden"))
    out += [(path, "chessboard holder") for path in sorted(samples.glob("left[0-9]*.jpg"))
            + sorted(samples.glob("right[0-9]*.jpg"))]
    out += [(samples / name, "basketball player") for name in ("basketball1.png", "basketball2.png")]
    out += [(samples / "messi5.jpg", "footballer"), (images / "t1.jpg", "*"), (images / "Tom_Hanks_54745.png", "hanks")]
    out += [(ROOT / "tests/data/real_photos" / f"{name}.jpg", name) for name in ("astronaut", "grace_hopper", "cameraman")]
    return out


def faces(rows: list[tuple[Path, str]]) -> list[dict]:
    """Every face the signal finds: photo, label, box, vector."""
    signal = FaceSignal()
    found = []
    for path, label in rows:
        out = signal.extract(str(path), None)
        for index, (box, vector) in enumerate(zip(out.boxes, out.vectors)):
            if vector is None:
                continue
            who = f"{path.name}#{index}" if label == "*" else label
            found.append({"photo": path.name, "who": who, "box": [box.x, box.y, box.w, box.h],
                          "vector": vector.tolist()})
        print(f"  {path.name:28s} {label:20s} faces {len(out.boxes)}")
    return found


def group(found: list[dict], threshold: float, order: list[str]) -> list[int | None]:
    """The library's grouping (face_grouping.store_faces) photo by photo in ``order``: each face's person id."""
    with tempfile.TemporaryDirectory() as folder, Library(Path(folder) / "g.db") as library:
        conn = library.db.conn
        by_photo: dict[str, list[int]] = {}
        for i, face in enumerate(found):
            by_photo.setdefault(face["photo"], []).append(i)
        folder_id = library.db.add_folder(Path(folder))
        media = {}
        for photo in order:
            with library.db.transaction() as tx:
                media[photo] = tx.execute("INSERT INTO media(path, folder_id, name, kind, status) VALUES (?, ?, ?, "
                                          "'image', 'ok') RETURNING id", (f"/{photo}", folder_id, photo)).fetchone()[0]
                indices = by_photo[photo]
                store_faces(tx, media[photo], [Box(*found[i]["box"], 1.0) for i in indices],
                            [np.asarray(found[i]["vector"], np.float32) for i in indices], threshold, 0.0)
        person = {}
        for photo, media_id in media.items():
            rows = conn.execute("SELECT person_id FROM faces WHERE media_id = ? ORDER BY id", (media_id,)).fetchall()
            for i, (person_id,) in zip(by_photo[photo], rows):
                person[i] = person_id
        return [person[i] for i in range(len(found))]


def pairwise(found: list[dict], people: list) -> tuple[int, int, int]:
    """(same-person pairs together, different-people pairs together, same-person pairs apart)."""
    tp = fp = fn = 0
    for a, b in itertools.combinations(range(len(found)), 2):
        same = found[a]["who"] == found[b]["who"]
        together = people[a] is not None and people[a] == people[b]
        tp += same and together
        fn += same and not together
        fp += together and not same
    return tp, fp, fn


def evaluate(found: list[dict]) -> dict:
    """Pairwise precision / recall / F1 of the grouping at every threshold, summed over ORDERS photo orders."""
    photos_in = sorted({f["photo"] for f in found})
    curve = {}
    for threshold in THRESHOLDS:
        tp = fp = fn = 0
        for seed in range(ORDERS):
            order = photos_in[:]
            random.Random(seed).shuffle(order)
            a, b, c = pairwise(found, group(found, threshold, order))
            tp, fp, fn = tp + a, fp + b, fn + c
        precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
        curve[threshold] = {"precision": round(precision, 3), "recall": round(recall, 3),
                            "f1": round(2 * precision * recall / max(precision + recall, 1e-9), 3)}
    return curve


def resolution(rows: list[tuple[Path, str]]) -> list[dict]:
    """How far a face's vector moves when the photo is reduced so that the face is N px wide."""
    signal = FaceSignal()
    out = []
    for path, _ in rows[:6]:
        photo = load_rgb(str(path), None)
        full = signal.extract("x", photo)
        if not full.vectors or full.vectors[0] is None:
            continue
        width = full.boxes[0].w * photo.size[0]
        for face_px in (30, 40, 60, 80, 120):
            if face_px >= width:
                continue
            small = photo.resize((round(photo.size[0] * face_px / width), round(photo.size[1] * face_px / width)),
                                 Image.Resampling.LANCZOS)
            reduced = FaceSignal(max_side=max(small.size)).extract("x", small)
            vector = reduced.vectors[0] if reduced.vectors else None
            out.append({"photo": path.name, "face_px_full": round(width), "face_px": face_px,
                        "moved": None if vector is None else round(float(np.linalg.norm(vector - full.vectors[0])), 3)})
            print("  resolution", out[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cots_faces_bench"))
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    rows = photos(args.work)
    found = faces(rows)
    labels = sorted({f["who"] for f in found})
    counts = {who: sum(f["who"] == who for f in found) for who in labels}
    print("faces per person:", counts)
    same = [float(np.linalg.norm(np.subtract(a["vector"], b["vector"])))
            for a, b in itertools.combinations(found, 2) if a["who"] == b["who"]]
    different = [float(np.linalg.norm(np.subtract(a["vector"], b["vector"])))
                 for a, b in itertools.combinations(found, 2) if a["who"] != b["who"]]
    result: dict = {"faces": len(found), "faces_per_person": counts,
                    "same_person_distance": {"n": len(same), "median": round(statistics.median(same), 3),
                                             "max": round(max(same), 3)},
                    "different_people_distance": {"n": len(different), "min": round(min(different), 3),
                                                  "p1": round(sorted(different)[len(different) // 100], 3)}}
    print(result["same_person_distance"], result["different_people_distance"])
    # Halves by photo: a person's photos are dealt alternately (ordered by a hash of the file name), so a
    # person seen in several photos has same-person pairs in both halves; a photo's faces stay together.
    half_of: dict[str, str] = {}
    for who in labels:
        photos_of = sorted({f["photo"] for f in found if f["who"] == who},
                           key=lambda name: hashlib.sha1(name.encode()).digest())
        start = hashlib.sha1(who.encode()).digest()[0] % 2
        for i, photo in enumerate(photos_of):
            half_of.setdefault(photo, "AB"[(start + i) % 2])
    for chosen_on, reported_on in (("A", "B"), ("B", "A")):
        there = [f for f in found if half_of[f["photo"]] == chosen_on]
        other = [f for f in found if half_of[f["photo"]] == reported_on]
        curve = evaluate(there)
        # the middle of the best plateau: as far from splitting a person as from joining two
        plateau = [t for t in THRESHOLDS if curve[t]["f1"] == max(c["f1"] for c in curve.values())]
        best = plateau[len(plateau) // 2]
        report = evaluate(other)[best]
        result[f"chosen_on_{chosen_on}"] = {"faces": len(there), "threshold": best, "plateau": plateau,
                                            "there": curve[best], f"on_{reported_on}": report,
                                            f"faces_on_{reported_on}": len(other)}
        print(f"chosen on {chosen_on} ({len(there)} faces): {best} (best F1 from {plateau[0]} to {plateau[-1]}) "
              f"{curve[best]}; on {reported_on} ({len(other)} faces): {report}")
    result["curve_all"] = evaluate(found)
    for threshold, entry in result["curve_all"].items():
        print(f"  all faces, join distance {threshold}: {entry}")
    result["resolution"] = resolution(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**result, "face_list": [{k: v for k, v in f.items() if k != "vector"}
                                                                  for f in found]}, indent=1))


if __name__ == "__main__":
    main()
