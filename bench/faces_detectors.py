"""Face detectors compared on the people benchmark's real photos, in one interleaved run (each photo goes
through every detector in turn, so a busy moment on the shared machine hits them all alike).

    nice -n 10 .venv/bin/python bench/faces_detectors.py [--work DIR] [--json bench/results/faces_detectors.json]

Photos and labels: bench/signals_faces.py (194 real photos from installable packages, 18 with people,
25 faces a person would count). Detectors, all offline, all from `dlib-bin` + `face-recognition-models`:
- hog: dlib's HOG on the photo reduced to 640 px, one upsampling, margin >= 0 (the faces signal's version 1);
- hog+cnn: HOG candidates down to margin -0.5, each checked by dlib's CNN (MMOD) on a 150 px crop of twice
  the candidate's side (the faces signal's version 2: ``FaceSignal.detect``);
- hog480+cnn: the same with the HOG pass on a 480 px copy (cheaper; smaller faces lost);
- cnn: dlib's CNN on the whole 640 px copy, no upsampling (the reference the crop check approximates).
Cost: seconds per photo for detection only (decoding excluded), one thread (OMP_NUM_THREADS=1).
``--stages``: instead, the shipped signal's ``stage_seconds`` (detect, landmarks, identity) on the photos as
the second pass decodes them (``read_image(path, 1024)``), over 3 rounds, for photos with and without people.
``--skip-margins 0.25 0.5 1.0``: instead, the shipped pipeline with the CNN check skipped for HOG candidates at
or above each margin (``FaceSignal(cnn_skip_margin=...)``), interleaved with "check every candidate": faces
found, false boxes and CNN checks per half of the photos (``signals_faces.halves``); the lowest margin that
loses nothing on one half is chosen and reported on the other, both ways (issue 25).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from signals_faces import collect, halves  # noqa: E402

from app.library.signals.faces import FaceSignal, load_rgb  # noqa: E402


def detectors() -> dict:
    """name -> function(photo) -> number of faces found."""
    v2 = FaceSignal(identities=False)
    v2_480 = FaceSignal(max_side=480, identities=False)
    models = v2.models()

    def hog(photo: Image.Image) -> int:
        small = photo.copy()
        small.thumbnail((640, 640), Image.Resampling.BILINEAR)
        rects, margins, _ = models.hog.run(np.asarray(small), 1, 0.0)
        return len(rects)

    def cnn(photo: Image.Image) -> int:
        small = photo.copy()
        small.thumbnail((640, 640), Image.Resampling.BILINEAR)
        return sum(d.confidence >= 0.0 for d in models.cnn(np.asarray(small), 0))

    return {"hog": hog, "hog+cnn": lambda p: len(v2.detect(p)), "hog480+cnn": lambda p: len(v2_480.detect(p)),
            "cnn": cnn}


def score(rows: list, found: list[int]) -> dict:
    """Photo-level "has people" precision/recall and face-count precision/recall/F1 (a face beyond a photo's
    labelled count is a false box)."""
    tp = fp = fn = face_tp = face_fp = face_fn = 0
    for (_, _, people, _, labelled), kept in zip(rows, found):
        said = kept > 0
        tp += said and people
        fp += said and not people
        fn += people and not said
        face_tp += min(kept, labelled)
        face_fp += max(kept - labelled, 0)
        face_fn += max(labelled - kept, 0)
    fp_, fr = face_tp / max(face_tp + face_fp, 1), face_tp / max(face_tp + face_fn, 1)
    return {"photo_precision": round(tp / max(tp + fp, 1), 3), "photo_recall": round(tp / max(tp + fn, 1), 3),
            "faces_found": face_tp, "false_boxes": face_fp, "faces_missed": face_fn,
            "face_precision": round(fp_, 3), "face_recall": round(fr, 3),
            "face_f1": round(2 * fp_ * fr / max(fp_ + fr, 1e-9), 3)}


def stages(rows: list) -> dict:
    """Median seconds per stage of ``FaceSignal.extract`` on the runner's decoded photo, with / without people
    (photos of at least 400 px: the tiny animal stamps would flatter the median)."""
    from app.library.signal_runner import SECOND_PASS_IMAGE_SIZE
    from cots_core.media import read_image

    signal = FaceSignal()
    signal.models()
    out: dict = {}
    for people in (True, False):
        chosen = [r for r in rows if r[2] == people and max(Image.open(r[1]).size) >= 400]
        times: dict[str, list[float]] = {"decode": [], "detect": [], "landmarks": [], "identity": [], "total": []}
        for _ in range(3):
            for _, path, *_ in chosen:
                started = time.perf_counter()
                image = read_image(str(path), target_size=SECOND_PASS_IMAGE_SIZE).frames[0]
                times["decode"].append(time.perf_counter() - started)
                result = signal.extract(str(path), image)
                for stage in ("detect", "landmarks", "identity"):
                    times[stage].append(result.stage_seconds.get(stage, 0.0))
                times["total"].append(sum(result.stage_seconds.values()))
        out["with_people" if people else "without_people"] = {
            "photos": len(chosen), **{f"{k}_median_s": round(statistics.median(v), 4) for k, v in times.items()},
            "total_mean_s": round(statistics.mean(times["total"]), 4)}
        print(out)
    return out


def skip_margins(rows: list, margins: list[float]) -> dict:
    """Per setting ("all": every candidate checked; else the skip margin) and half: ``score`` figures, CNN
    checks and detection seconds; the margin chosen on each half (the lowest whose found and false boxes there
    equal checking all) and its figures on the other half."""
    settings: dict = {"all": FaceSignal(identities=False, cnn_skip_margin=None)}
    settings.update({str(m): FaceSignal(identities=False, cnn_skip_margin=m) for m in margins})
    names = list(settings)
    found = {name: [] for name in names}
    checks = {name: [] for name in names}
    seconds = {name: [] for name in names}
    for index, (_, path, *_) in enumerate(rows):
        photo = load_rgb(str(path), None)
        photo.thumbnail((2048, 2048))
        for offset in range(len(names)):  # rotated order, as in main()
            name = names[(index + offset) % len(names)]
            timings: dict[str, float] = {}
            found[name].append(len(settings[name].detect(photo, timings)))
            checks[name].append(int(timings["cnn_checks"]))
            seconds[name].append(timings["detect"])
    split = halves(rows)
    out: dict = {"photos": len(rows), "settings": {}}
    for name in names:
        out["settings"][name] = {}
        for half in ("A", "B", "all"):
            keep = [i for i, r in enumerate(rows) if half == "all" or split[r[0]] == half]
            out["settings"][name][half] = {
                **score([rows[i] for i in keep], [found[name][i] for i in keep]),
                "cnn_checks": sum(checks[name][i] for i in keep),
                "mean_detect_s": round(statistics.mean(seconds[name][i] for i in keep), 4),
                "mean_detect_s_with_people": round(statistics.mean(
                    seconds[name][i] for i in keep if rows[i][2]), 4)}
        print(name, {h: {k: v for k, v in f.items() if k in ("faces_found", "false_boxes", "cnn_checks",
                                                               "mean_detect_s")}
                     for h, f in out["settings"][name].items()})
    for chosen_on, reported_on in (("A", "B"), ("B", "A")):  # lowest margin losing nothing on one half
        ref = out["settings"]["all"][chosen_on]
        same = [m for m in margins if all(out["settings"][str(m)][chosen_on][k] == ref[k]
                                          for k in ("faces_found", "false_boxes"))]
        chosen = min(same) if same else None
        out[f"chosen_on_{chosen_on}"] = {"margin": chosen, f"all_checked_on_{reported_on}": out["settings"]["all"][
            reported_on], f"at_the_margin_on_{reported_on}": out["settings"][str(chosen)][reported_on] if same else None}
        print(f"chosen on {chosen_on}: {chosen}; on {reported_on}:", out[f"chosen_on_{chosen_on}"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cots_faces_bench"))
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--stages", action="store_true", help="measure the shipped signal's stages instead")
    parser.add_argument("--skip-margins", type=float, nargs="+", help="instead, skip the CNN check from these margins")
    args = parser.parse_args()
    rows = collect(args.work)
    if args.skip_margins:
        load_before = round(os.getloadavg()[0], 1)
        result = {**skip_margins(rows, args.skip_margins), "load_average": [load_before, round(os.getloadavg()[0], 1)]}
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1))
        return
    if args.stages:
        result = {"stages": stages(rows), "load_average": round(os.getloadavg()[0], 1)}
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1))
        return
    runs = detectors()
    names = list(runs)
    found = {name: [] for name in names}
    seconds = {name: [] for name in names}
    per_photo = []
    load_before = os.getloadavg()[0]
    for index, (name, path, people, category, labelled) in enumerate(rows):
        photo = load_rgb(str(path), None)
        photo.thumbnail((2048, 2048))  # about what the runner hands the second pass
        counts = {}
        for offset in range(len(names)):  # rotate the order: no detector always runs first or last
            detector = names[(index + offset) % len(names)]
            started = time.perf_counter()
            counts[detector] = runs[detector](photo)
            seconds[detector].append(time.perf_counter() - started)
            found[detector].append(counts[detector])
        per_photo.append({"name": name, "people": people, "category": category, "labelled": labelled, **counts})
        if people or any(counts.values()):
            print(f"  {name:40s} {category:32s} labelled {labelled} " + " ".join(f"{k} {v}" for k, v in counts.items()))
    result = {"photos": len(rows), "with_people": sum(r[2] for r in rows), "faces_labelled": sum(r[4] for r in rows),
              "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)], "detectors": {}}
    for detector in names:
        times = sorted(seconds[detector])
        result["detectors"][detector] = {
            **score(rows, found[detector]), "median_s": round(statistics.median(times), 3),
            "p90_s": round(times[int(0.9 * len(times))], 3), "mean_s": round(statistics.mean(times), 3),
            "median_s_without_people": round(statistics.median(
                s for s, r in zip(seconds[detector], rows) if not r[2]), 3)}
        print(detector, result["detectors"][detector])
    result["per_photo"] = per_photo
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
