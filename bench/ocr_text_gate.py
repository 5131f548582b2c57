"""Could a cheap text-presence test skip OCR on photos without text (issue 33)? Two candidate gates, measured.

    nice -n 10 .venv/bin/python bench/ocr_text_gate.py [--work DIR] [--json OUT]

OCR's detector on the 800 px copy is the largest part of the second pass on photos without text (the common
case), so a gate pays only if it is cheaper than that detector and skips photos without text while passing
every photo in which OCR finds a line. Candidates:
- **small detector**: OCR's own detector (the same ONNX model) on a copy of 320-640 px instead of 800; its
  score is the best DB box score (``box_thresh`` set to 0) and the map's highest text probability;
- **stored embedding**: the photo's image embedding (the index already has it) against text prompts ("text",
  "a sign with words on it", ...), its best cosine similarity.
Photos (all real, nothing upscaled): bench/second_pass_stages.py's "large" and "phone" sets (Debian wallpapers),
scikit-image/scikit-learn's plain photos; with text: the real photos of bench/signals_ocr.py and
tests/data/real_photos (book page, corner text, name tag, badges), and **rendered text over the large set's
real photos**: each photo decoded at 2560 px, one of bench/signals_ocr.py's phrases drawn at 1.5, 3 and 6 % of
its height in both styles (white outlined letters; dark letters on a light plate), then brought to 1280 px by
OCR as in the runner (150 photos). "With text" = today's OCR keeps a line on it (what a gate must not lose).
For each gate: the lowest score among photos with text (the threshold that loses none), how many photos
without text fall under it (skipped), and its cost against the 800 px detector's.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SIDES = (320, 480, 640)
PROMPTS = ("text", "a sign with words on it", "a photo with writing", "a document", "letters", "a label",
           "a poster with words")


def photos(work: Path) -> list[tuple[str, str, object, object]]:
    """(set, name, the runner's 1280 px decode, the embedding pass's decode) for every photo."""
    import second_pass_stages as stages
    import signals_ocr

    from app.library.signal_runner import decode_for_second_pass
    from app.library.signals.ocr import _bounded
    from cots_core.media import read_image

    def pair(path: Path) -> tuple:
        return decode_for_second_pass(str(path), 1280), read_image(path, 224).frames[0]

    rows = [("large", stages.photo_name(p), *pair(p)) for p in stages.large_photos(work)]
    rows += [("phone", stages.photo_name(p), *pair(p)) for p in stages.phone_photos(work)]
    rows += [("plain", name, _bounded(img, 1280), img) for name, img in signals_ocr.plain_photos().items()]
    rows += [("real text", name, _bounded(img, 1280), img) for name, img, _ in signals_ocr.text_photos()]
    rows += [("real text", name, *pair(ROOT / "tests/data/real_photos" / f"{name}.jpg"))
             for name in ("book_page", "corner_text")]
    for i, path in enumerate(stages.large_photos(work)):
        base = decode_for_second_pass(str(path), 2560)
        for height in signals_ocr.TEXT_HEIGHTS:
            for style in (0, 1):  # even seeds: white outlined letters; odd: a sign
                phrase = signals_ocr.PHRASES[(i + style) % len(signals_ocr.PHRASES)]
                img = signals_ocr.render(base, phrase, height, seed=2 * i + style)
                rows.append((f"rendered h={height}", f"{stages.photo_name(path)}: {phrase}", _bounded(img, 1280), img))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cots_speed_bench")
    parser.add_argument("--json", type=Path, help="write the per-photo rows here")
    args = parser.parse_args()
    from rapidocr.ch_ppocr_det.utils import DBPostProcess, DetPreProcess

    from app.library.encoder import Encoder
    from app.library.signals.ocr import OcrSignal

    ocr = OcrSignal()
    ocr.prepare()
    detector = ocr._load()._load_det_model()
    any_box = DBPostProcess(thresh=0.3, box_thresh=0.0, unclip_ratio=1.6, use_dilation=True)
    encoder = Encoder.load(device="cpu")
    encoder.prepare_images()
    prompts = np.asarray(encoder.encode_texts(list(PROMPTS)), np.float32)
    prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    rows = []
    for set_name, name, photo, small in photos(args.work):
        row: dict = {"set": set_name, "name": name}
        start = time.perf_counter()
        row["lines"] = len(ocr.extract("", photo).boxes)
        row["ocr_s"] = time.perf_counter() - start
        bgr = np.asarray(photo)[:, :, ::-1]
        for side in (*SIDES, 800):
            start = time.perf_counter()
            pred = detector.session(DetPreProcess(side, "max", detector.mean, detector.std)(bgr))
            row[f"det{side}_s"] = time.perf_counter() - start
            row[f"det{side}_box"] = max(any_box(pred, bgr.shape[:2])[1], default=0.0)
            row[f"det{side}_max"] = float(pred.max())
        vector = np.asarray(encoder.encode_pil([small]), np.float32)[0]
        row["embedding_sim"] = float((prompts @ (vector / np.linalg.norm(vector))).max())
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    with_text = [r for r in rows if r["lines"]]
    without = [r for r in rows if not r["lines"] and not r["set"].startswith("rendered")]
    found = {s: (sum(1 for r in rows if r["set"] == s and r["lines"]), sum(1 for r in rows if r["set"] == s))
             for s in dict.fromkeys(r["set"] for r in rows)}
    print("photos where today's OCR keeps a line / photos, per set:", found)
    full = statistics.median(r["det800_s"] for r in rows)
    print("| gate | score | lowest score on a photo with text | photos without text skipped at it "
          f"| median s (800 px detector: {full:.3f}) |")
    print("|---|---|---|---|---|")
    gates = [(f"detector at {side} px", f"det{side}_{kind}", f"det{side}_s") for side in SIDES
             for kind in ("box", "max")] + [("stored embedding", "embedding_sim", None)]
    for label, key, cost in gates:
        lowest = min(r[key] for r in with_text)
        skipped = sum(r[key] < lowest for r in without)
        seconds = f"{statistics.median(r[cost] for r in rows):.3f}" if cost else "0 (stored)"
        kind = {"box": "best box", "max": "highest probability"}.get(key.rsplit("_", 1)[-1], "best cosine")
        print(f"| {label} | {kind} | {lowest:.3f} | {skipped} / {len(without)} | {seconds} |")


if __name__ == "__main__":
    main()
