"""Text in photos (issue 14): what OCR costs per photo and how often its words are right.

Three sets, all from installed packages (no download):
- rendered: sign-like phrases drawn with Pillow's font over real photos (scikit-image and
  scikit-learn) enlarged to a 12 MP phone size, three text heights (1.5, 3 and 6 % of the photo's height),
  two styles (white letters with a dark outline; dark letters on a light plate). Used to CHOOSE the size
  OCR works at (``--sides``) and the line-confidence threshold.
- real: photos whose text is really in them, with the words written down by looking at them
  (scikit-image ``page.png``, a photo of a printed book page; matplotlib's ``grace_hopper.jpg``, her name
  tag; scikit-image ``motorcycle_left.png``, a Yamaha's badges).
- plain: real photos without legible text (their false words are the junk OCR would index).
The chosen recipe is REPORTED on real + plain. Word-level precision = share of recognised words that are
in the photo; recall = share of the photo's words recognised (case-insensitive, edge punctuation removed).

    nice -n 10 python bench/signals_ocr.py --threads 1 --sides 640,960,1280,1920
    nice -n 10 python bench/signals_ocr.py --det-sides 800,736,704 --seeds 4   # the detector's input size
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.library.signals.ocr import OcrSignal  # noqa: E402

PHRASES = ["RECEIPT IKEA 2019", "STOP", "Gate B12 Departures", "Happy Birthday Anna", "Cafe de Flore",
           "Total 23.50 EUR", "Platform 9 Exit", "Museum of Modern Art"]
TEXT_HEIGHTS = (0.015, 0.03, 0.06)
PHONE_SIZE = (4032, 3024)
# What page.png shows (the last, half-hidden line is left out: it is not readable to a person either).
PAGE_WORDS = ("Region-based segmentation Let us first determine markers of the coins and the background. "
              "These markers are pixels that we can label unambiguously as either object or background. "
              "Here, the markers are found at the two extreme parts of the histogram of grey values: "
              ">>> markers = np.zeros_like(coins)")


def _skimage(file: str) -> Image.Image:
    import skimage.data

    return Image.open(Path(skimage.data.data_dir) / file).convert("RGB")


def _sklearn(name: str) -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image(name)).convert("RGB")


def _matplotlib(name: str) -> Image.Image:
    import matplotlib.cbook

    return Image.open(matplotlib.cbook.get_sample_data(name)).convert("RGB")


def plain_photos() -> dict[str, Image.Image]:
    """Real photos without legible text (the rocket's lettering is a few unreadable pixels)."""
    photos = {f"skimage {n}": _skimage(n) for n in ("astronaut.png", "coffee.png", "chelsea.png", "camera.png",
                                                     "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg")}
    photos.update({f"sklearn {n}": _sklearn(n) for n in ("china.jpg", "flower.jpg")})
    return photos


def text_photos() -> list[tuple[str, Image.Image, str]]:
    """Real photos with text in them, and the words a person reads there."""
    return [("skimage page.png", _skimage("page.png"), PAGE_WORDS),
            ("matplotlib grace_hopper.jpg", _matplotlib("grace_hopper.jpg"), "COMO HOPPER"),  # her name tag
            # the tank and the engine cover say YAMAHA, the side cover MAXIM
            ("skimage motorcycle_left.png", _skimage("motorcycle_left.png"), "YAMAHA YAMAHA MAXIM")]


def words(text: str) -> list[str]:
    """Case-folded words without edge punctuation (``background.`` -> ``background``)."""
    cleaned = (w.strip(".,:;!?()'\"").casefold() for w in text.split())
    return [w for w in cleaned if w]


def enlarge(base: Image.Image) -> Image.Image:
    """``base`` at a 12 MP phone photo's size."""
    return base.resize(PHONE_SIZE if base.width >= base.height else PHONE_SIZE[::-1], Image.Resampling.BICUBIC)


def render(big: Image.Image, phrase: str, height_frac: float, seed: int) -> Image.Image:
    """``phrase`` drawn on a copy of ``big``, letters ``height_frac`` of the photo high, placed by ``seed``."""
    rng = random.Random(seed)
    photo = big.copy()
    font = ImageFont.load_default(size=max(8, round(height_frac * photo.height)))
    draw = ImageDraw.Draw(photo)
    left, top, right, bottom = draw.textbbox((0, 0), phrase, font=font)
    x = rng.randint(0, max(0, photo.width - (right - left) - 1))
    y = rng.randint(0, max(0, photo.height - (bottom - top) - 1))
    if seed % 2:  # odd seeds: a sign: dark letters on a light plate
        pad = (bottom - top) // 3
        draw.rectangle((x - pad, y - pad, x + right + pad, y + bottom + pad), fill=(235, 230, 215))
        draw.text((x, y), phrase, font=font, fill=(20, 30, 60))
    else:
        draw.text((x, y), phrase, font=font, fill="white", stroke_width=max(1, font.size // 12),
                  stroke_fill="black")
    return photo


def score(found: list[str], truth: list[str]) -> tuple[int, int, int]:
    """(recognised words that are in the photo, recognised words, photo words recognised)."""
    found_c, truth_c = Counter(found), Counter(truth)
    hits = sum((found_c & truth_c).values())
    return hits, len(found), hits


def lines_with_scores(signal: OcrSignal, image: Image.Image) -> tuple[list[tuple[str, float]], float]:
    """All kept lines (threshold 0 here: thresholds are applied afterwards) and the seconds it took."""
    start = time.perf_counter()
    out = signal.extract("", image)
    return [(b.label, b.score) for b in out.boxes], time.perf_counter() - start


def pr_table(rows: list[tuple[str, list[tuple[str, float]], list[str]]], thresholds: list[float]) -> list[str]:
    lines = ["| min line score | precision | recall | false words on plain photos |", "|---|---|---|---|"]
    for t in thresholds:
        hits = found = truth = false = 0
        for _, got, want in rows:
            kept = words(" ".join(text for text, s in got if s >= t))
            h, f, _ = score(kept, want)
            hits, found, truth = hits + h, found + f, truth + len(want)
            false += 0 if want else f
        prec = hits / found if found else float("nan")
        lines.append(f"| {t:.2f} | {prec:.3f} ({hits}/{found}) | {hits / max(1, truth):.3f} ({hits}/{truth}) | {false} |")
    return lines


def cost_table(sides: list[int], photos: int = 8) -> None:
    """Median seconds per 12 MP photo (8 rendered phone photos, decoded beforehand) per side and threads."""
    bases = plain_photos()
    bigs = [enlarge(bases[n]) for n in ("sklearn china.jpg", "skimage coffee.png")]
    images = [render(bigs[i % 2], PHRASES[i % len(PHRASES)], 0.03, i) for i in range(photos)]
    print("| longest side | threads | model load s | median s/photo | min s/photo |")
    print("|---|---|---|---|---|")
    for side in sides:
        for threads in (1, 2):
            signal = OcrSignal(threads=threads, max_side=side)
            start = time.perf_counter()
            signal._load()
            load_s = time.perf_counter() - start
            seconds = [lines_with_scores(signal, image)[1] for image in images]
            print(f"| {side} | {threads} | {load_s:.2f} | {statistics.median(seconds):.2f} | {min(seconds):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sides", default="640,960,1280,1920", help="longest sides to compare")
    parser.add_argument("--side", type=int, default=None, help="the side reported on real photos")
    parser.add_argument("--det-sides", default=None,
                        help="compare the detector's input sizes instead (OcrSignal det_side) at --side, e.g. 800,736")
    parser.add_argument("--seeds", type=int, default=2, help="placements per phrase and text height")
    parser.add_argument("--cost-only", action="store_true",
                        help="only seconds per 12 MP photo at each of --sides, with 1 and 2 threads")
    args = parser.parse_args()
    if args.cost_only:
        cost_table([int(s) for s in args.sides.split(",")])
        return
    thresholds = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    print(f"threads={args.threads} cpus={os.cpu_count()} (timings on a shared machine: medians)")

    bases = plain_photos()
    # Memory first, before the other test photos are built: one model + one 12 MP photo.
    probe_photo = render(enlarge(bases["skimage coffee.png"]), "Cafe de Flore", 0.03, 0)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    probe = OcrSignal(threads=args.threads)
    start = time.perf_counter()
    probe._load()
    load_s = time.perf_counter() - start
    probe.extract("", probe_photo)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"model load (3 ONNX sessions): {load_s:.2f} s; peak RSS {rss1:.0f} MB after one 12 MP photo, "
          f"of which OCR {rss1 - rss0:.0f} MB")
    del probe, probe_photo
    bigs = [enlarge(bases[n]) for n in ("sklearn china.jpg", "skimage coffee.png", "skimage chelsea.png",
                                          "skimage astronaut.png")]
    rendered = []
    for i, phrase in enumerate(PHRASES):
        for h in TEXT_HEIGHTS:
            for seed in range(args.seeds):
                big = bigs[(i + seed) % len(bigs)]
                rendered.append((f"{phrase}@{h}", (big, phrase, h, seed + 2 * i), words(phrase)))

    print("\n## choosing the size (rendered set: "
          f"{len(rendered)} phone-size photos, {len(PHRASES)} phrases x {len(TEXT_HEIGHTS)} heights x {args.seeds})")
    # (column value, OcrSignal arguments): the longest side OCR reads at, or (--det-sides) the detector's input
    if args.det_sides:
        read_side = args.side or OcrSignal().max_side
        recipes = [(d, {"max_side": read_side, "det_side": d}) for d in map(int, args.det_sides.split(","))]
        print(f"(lines read at {read_side} px; the column is the detector's input, OcrSignal det_side)")
    else:
        recipes = [(side, {"max_side": side}) for side in map(int, args.sides.split(","))]
    print(f"| {'detector side' if args.det_sides else 'longest side'} | recall h=1.5% | h=3% | h=6% | precision | "
          "median s/photo |")
    print("|---|---|---|---|---|---|")
    runs: dict[int, list[tuple[str, list[tuple[str, float]], list[str]]]] = {}
    for side, recipe in recipes:
        signal = OcrSignal(threads=args.threads, min_score=0.0, **recipe)
        signal._load()
        runs[side] = []
        per_h: dict[float, list[int]] = {h: [0, 0] for h in TEXT_HEIGHTS}
        hits = found = 0
        seconds = []
        for label, spec, want in rendered:
            got, sec = lines_with_scores(signal, render(*spec))
            seconds.append(sec)
            runs[side].append((label, got, want))
            kept = words(" ".join(t for t, s in got if s >= 0.5))
            h_hits, h_found, _ = score(kept, want)
            h = float(label.rsplit("@", 1)[1])
            per_h[h][0] += h_hits
            per_h[h][1] += len(want)
            hits, found = hits + h_hits, found + h_found
        print(f"| {side} | " + " | ".join(f"{a / b:.2f}" for a, b in per_h.values())
              + f" | {hits / max(1, found):.2f} | {statistics.median(seconds):.2f} |")

    if args.det_sides:  # the real photos with text and the plain ones, at the shipped line threshold
        real_photos = text_photos()
        print(f"\n## real photos with text + plain photos, threshold {OcrSignal().min_score}, per detector side")
        for side, recipe in recipes:
            signal = OcrSignal(threads=args.threads, min_score=0.0, **recipe)
            report = [(n, lines_with_scores(signal, photo)[0], words(truth)) for n, photo, truth in real_photos]
            report += [(n, lines_with_scores(signal, image)[0], []) for n, image in bases.items()]
            print(f"detector side {side}: " + pr_table(report, [OcrSignal().min_score])[-1])
        return
    side = args.side or OcrSignal().max_side
    signal = OcrSignal(threads=args.threads, max_side=side, min_score=0.0)
    signal._load()
    rows_rendered = runs.get(side) or [(label, lines_with_scores(signal, render(*spec))[0], want)
                                       for label, spec, want in rendered]
    plain = [(name, *lines_with_scores(signal, image)) for name, image in bases.items()]
    print(f"\n## choosing the threshold (rendered set at side {side}, plus the plain photos' false words)")
    print("\n".join(pr_table(rows_rendered + [(n, got, []) for n, got, _ in plain], thresholds)))
    false = Counter(w for _, got, want in rows_rendered for w in words(" ".join(t for t, _ in got)) if w not in want)
    print(f"false words on the rendered set (any score): {dict(false.most_common(20))}")

    real = [(name, lines_with_scores(signal, photo)[0], words(truth)) for name, photo, truth in text_photos()]
    report = real + [(n, got, []) for n, got, _ in plain]
    print(f"\n## reported: real photos with text + plain photos (side {side}, default threshold "
          f"{OcrSignal().min_score})")
    print("\n".join(pr_table(report, thresholds)))
    for name, got, _ in report:
        print(f"- {name}: {[(t, round(s, 2)) for t, s in got]}")

    seconds = [s for _, _, s in plain]
    print(f"\n## cost at side {side}, {args.threads} thread(s)")
    print(f"plain photos (<= 640 px, det upscales to 736): median {statistics.median(seconds):.2f} s")
    phone = [lines_with_scores(signal, render(*spec))[1] for _, spec, _ in rendered[:: max(1, len(rendered) // 8)]]
    print(f"12 MP photos (shrunk to {side}): median {statistics.median(phone):.2f} s over {len(phone)}")


if __name__ == "__main__":
    main()
