"""The second pass (text in photos, faces) beside the embedding pass, per photo and per stage (issue 25).

    nice -n 10 .venv/bin/python bench/second_pass_stages.py [--work DIR] [--repeat 2] [--jsonl OUT] [--cli]

Two sets of real photos (nothing upscaled, nothing committed; fetched into --work, default /tmp/cots_speed_bench):
- phone: the real photographs among Debian's desktop wallpapers (``plasma-workspace-wallpapers``,
  ``mate-backgrounds``; drawings and abstract art left out by looking at each), 2.5 to 20 MP, JPEG as
  phones write them. None holds legible text or a face: the common case.
- text or people: every photo of the repository's tests/data/real_photos with text or a person in it, and
  the portraits and group of bench/signals_faces.py's sdists (``face_recognition``, ``insightface``).
Per photo, in one loop (so that the shared machine disturbs all columns alike): the embedding (decode at the
model's size + the image tower, batch 1, the default model), the second pass's decode, then OCR's stages
(``SignalOutput.stage_seconds``: detect, angle, recognise) and faces, each for the recipe of before this
issue (decode at 1024 on the short side, rapidocr's detector rule, angle classifier) and for today's.
``--cli``: also ``cots index`` of each set into a fresh library with and without the second pass, its own
"done in" figure, --repeat times, alternating (the end-to-end ratio).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/signals_faces.py (imported for its fetchers) pins OMP_NUM_THREADS=1 for dlib; `cots index` below must
# run with the threads it would have for a person.
OMP_THREADS = os.environ.get("OMP_NUM_THREADS")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# Real photographs among the wallpapers, by package and path (looked at one by one; >= 2.5 MP).
PHONE = {
    "plasma-workspace-wallpapers": [f"usr/share/wallpapers/{name}/contents/images/{size}" for name, size in (
        ("BytheWater", "1280x1024.jpg"), ("ColdRipple", "1280x1024.jpg"), ("ColorfulCups", "2560x1600.jpg"),
        ("DarkestHour", "1280x1024.jpg"), ("EveningGlow", "1280x1024.jpg"), ("FallenLeaf", "1280x1024.jpg"),
        ("Grey", "1280x1024.jpg"), ("Kite", "1280x1024.jpg"), ("OneStandsOut", "1280x1024.jpg"),
        ("Path", "1280x1024.jpg"), ("Volna", "5120x2880.jpg"), ("summer_1am", "1280x1024.jpg"))],
    "mate-backgrounds": [f"usr/share/backgrounds/mate/nature/{name}.jpg" for name in (
        "Aqua", "Garden", "LadyBird", "Storm", "TwoWings", "Wood", "YellowFlower")],
}
TEXT_REPO = ("book_page corner_text grace_hopper motorcycle astronaut cameraman").split()
PEOPLE_SDIST = ["face_recognition-1.3.0/tests/test_images/" + name for name in (
    "obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg")]
PEOPLE_SDIST += ["insightface-2.1/python-package/insightface/data/images/t1.jpg"]


def phone_photos(work: Path) -> list[Path]:
    from signals_faces import fetch_deb

    photos = []
    for package, paths in PHONE.items():
        root = fetch_deb(package, work)
        photos += [root / p for p in paths if (root / p).is_file()]
    return photos


def text_or_people_photos(work: Path) -> list[Path]:
    from signals_faces import fetch_sdist

    fetch_sdist("face_recognition==1.3.0", work)
    fetch_sdist("insightface==2.1", work)
    photos = [ROOT / "tests/data/real_photos" / f"{name}.jpg" for name in TEXT_REPO]
    found = [work / p for p in PEOPLE_SDIST]
    found = [p if p.is_file() else next(iter(sorted(work.glob("insightface-2.1/**/" + p.name))), p) for p in found]
    return photos + [p for p in found if p.is_file()]


def photo_name(path: Path) -> str:
    """A readable, unique name: a Plasma wallpaper's folder (its files are all called by their size)."""
    return f"{path.parts[-4]}{path.suffix}" if path.parent.name == "images" else path.name


def recipes():
    """name -> (decode function, OCR signal): the recipe before this issue and today's."""
    from app.library.signal_runner import decode_for_second_pass
    from app.library.signals.ocr import OcrSignal
    from cots_core.media import read_image

    before = OcrSignal(det_side=0, use_angle=True)
    after = OcrSignal()
    return {"before": (lambda path: read_image(path, target_size=1024).frames[0], before),
            "after": (lambda path: decode_for_second_pass(path, after.max_side), after)}


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def stage_rows(photos: list[Path], set_name: str, repeat: int) -> list[dict]:
    """One dict per photo and repeat: the seconds of every stage, before and after, and what was found."""
    from PIL import Image

    from app.library.encoder import Encoder
    from app.library.signals.faces import FaceSignal
    from cots_core.media import read_image

    encoder = Encoder.load(device="cpu")
    encoder.prepare_images()
    faces = FaceSignal()
    plans = recipes()
    for _, ocr in plans.values():
        ocr._load()
    rows = []
    for run in range(repeat):
        for path in photos:
            row: dict = {"set": set_name, "photo": photo_name(path), "run": run}
            with Image.open(path) as header:
                row["megapixels"] = round(header.width * header.height / 1e6, 1)
            decoded, row["embed_decode"] = timed(read_image, path, encoder.image_size)
            _, row["embed_model"] = timed(encoder.encode_pil, [decoded.frames[0]])
            for name, (decode, ocr) in plans.items():
                image, row[f"{name}.decode"] = timed(decode, str(path))
                row[f"{name}.side"] = max(image.size)
                text, row[f"{name}.ocr"] = timed(ocr.extract, str(path), image)
                for stage, seconds in text.stage_seconds.items():
                    row[f"{name}.ocr.{stage}"] = seconds
                row[f"{name}.ocr_words"] = len(" ".join(b.label for b in text.boxes).split())
                found, row[f"{name}.faces"] = timed(faces.extract, str(path), image)
                for stage, seconds in found.stage_seconds.items():
                    row[f"{name}.faces.{stage}"] = seconds
                row[f"{name}.faces_found"] = len(found.boxes)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict]) -> list[str]:
    """Mean seconds per photo per stage, before and after, per set; and the ratio to the embedding."""
    lines = ["| set | recipe | decode | OCR detect | OCR angle | OCR recognise | OCR total | faces | second pass "
             "| embedding (decode + model) | second pass / embedding | OCR words | faces |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for set_name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == set_name]
        embed = statistics.mean(r["embed_decode"] + r["embed_model"] for r in mine)
        for recipe in ("before", "after"):
            def mean(key: str, recipe: str = recipe, mine: list[dict] = mine) -> float:
                return statistics.mean(r.get(f"{recipe}.{key}", 0.0) for r in mine)

            second = mean("decode") + mean("ocr") + mean("faces")
            words = sum(r[f"{recipe}.ocr_words"] for r in mine if r["run"] == 0)
            faces = sum(r[f"{recipe}.faces_found"] for r in mine if r["run"] == 0)
            lines.append(f"| {set_name} ({len(mine) // max(1, 1 + max(r['run'] for r in mine))}) | {recipe} | "
                         f"{mean('decode'):.3f} | {mean('ocr.detect'):.3f} | {mean('ocr.angle'):.3f} | "
                         f"{mean('ocr.recognise'):.3f} | {mean('ocr'):.3f} | {mean('faces'):.3f} | {second:.3f} | "
                         f"{embed:.3f} | {second / embed:.1f}x | {words} | {faces} |")
    return lines


def cli_ratio(photos: list[Path], set_name: str, repeat: int, code: Path) -> list[dict]:
    """``cots index`` into fresh libraries, embeddings only and with the second pass, alternating: "done in"."""
    folder = Path(tempfile.mkdtemp(prefix=f"cots-speed-{set_name}-"))
    for path in photos:
        (folder / photo_name(path)).symlink_to(path)
    env = dict(os.environ, PYTHONPATH=str(code), HF_HUB_OFFLINE="1")
    env.pop("OMP_NUM_THREADS", None)
    if OMP_THREADS is not None:
        env["OMP_NUM_THREADS"] = OMP_THREADS
    rows = []
    for run in range(repeat):
        for flags in (["--no-ocr", "--no-faces"], []):
            db = Path(tempfile.mkdtemp()) / "lib.db"
            out = subprocess.run([sys.executable, "-m", "app.cli", "index", "--db", str(db), *flags, str(folder)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            seconds = float(re.search(r"done in ([0-9.]+)s", out).group(1))
            rows.append({"set": set_name, "cli": "embeddings only" if flags else "with second pass", "run": run,
                         "done_in_s": seconds, "code": str(code)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cots_speed_bench")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--jsonl", type=Path, help="append the raw rows here")
    parser.add_argument("--cli", action="store_true", help="also time `cots index` with and without the second pass")
    parser.add_argument("--cli-only", action="store_true", help="only the `cots index` timings")
    parser.add_argument("--code", type=Path, default=ROOT, help="with --cli: the checkout whose `cots` runs")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    sets = {"phone": phone_photos(args.work), "text or people": text_or_people_photos(args.work)}
    print(f"cpus={os.cpu_count()} OMP_NUM_THREADS={OMP_THREADS} (shared machine: read the "
          f"ratios, measured in one loop); photos: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    rows = []
    if args.cli or args.cli_only:
        for name, photos in sets.items():
            rows += cli_ratio(photos, name, args.repeat, args.code)
    for name, photos in sets.items() if not args.cli_only else ():
        rows += stage_rows(photos, name, args.repeat)
    if not args.cli_only:
        print("\n".join(table([r for r in rows if "embed_model" in r])))
    for name in sets:
        cli = [r for r in rows if r.get("cli") and r["set"] == name]
        if cli:
            only = statistics.median(r["done_in_s"] for r in cli if r["cli"] == "embeddings only")
            both = statistics.median(r["done_in_s"] for r in cli if r["cli"] != "embeddings only")
            print(f"cots index {name}: embeddings only {only:.1f} s, with the second pass {both:.1f} s: second pass "
                  f"= {(both - only) / only:.2f}x the embedding pass (medians of {args.repeat})")
    if args.jsonl:
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        with args.jsonl.open("a") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
