"""The second pass (text in photos, faces) beside the embedding pass, per photo and per stage (issue 25).

    .venv/bin/python bench/second_pass_stages.py [--work DIR] [--repeat 3] [--recipes merged after] [--jsonl OUT]
    .venv/bin/python bench/second_pass_stages.py --cli-only --repeat 3 --code /tmp/base . [--jsonl OUT]
    .venv/bin/python bench/second_pass_stages.py --load-only --repeat 3 --jsonl OUT; ... --summarise OUT

Three sets of real photos (nothing upscaled, nothing committed; fetched into --work, default /tmp/cots_speed_bench):
- phone: the real photographs among Debian's desktop wallpapers (``plasma-workspace-wallpapers``,
  ``mate-backgrounds``; drawings and abstract art left out by looking at each), 2.5 to 15 MP, JPEG as
  phones write them. None holds legible text or a face: the common case.
- text or people: every photo of the repository's tests/data/real_photos with text or a person in it, and
  the portraits and group of bench/signals_faces.py's sdists (``face_recognition``, ``insightface``).
- large (``--sets large``, issue 33): 25 JPEGs of 2.3 to 24 MP (median 6.3; 6000 x 4000, 6028 x 3391,
  5640 x 3172, 4096 x 4096 among them), most of them progressive, from Debian's wallpaper packages (``LARGE``).
Per photo, in one loop (so that the shared machine disturbs all columns alike): the embedding (decode at the
model's size + the image tower, batch 1, the default model), then for each recipe (``recipes``; their order
turns from photo to photo) the second pass's decode and OCR and faces side by side on two threads as the
runner runs them: the wall time, each signal's ``stage_seconds``, what was found, the faces' CNN checks, and
the load average.
``--cli``: also ``cots index`` of each set into a fresh library with and without the second pass, its own
"done in" figure and the process's CPU seconds, --repeat times, for each checkout of ``--code`` in turn (the end-to-end ratio), also less
the second pass's one-time model load (``models_load_seconds``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
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
# Large photos (issue 33): the real photographs of 4.5-20.4 MP among Debian's wallpapers (Ubuntu Touch's
# ``lomiri-wallpapers-16.04`` / ``-20.04``, MATE's, Plasma's), looked at one by one, with the only two larger
# files there: Painting-Colors (6000 x 4000, a drawing saved as a JPEG) and MATE's Elephants (5640 x 3172, a
# photograph of a painted canvas). Kleiber (6028 x 3391) is the only real 20+ MP photograph in Debian's
# wallpaper packages.
LARGE = {
    "lomiri-wallpapers-20.04": [f"usr/share/backgrounds/{name}.jpg" for name in (
        "Painting-Colors_by__herobrine7gamer", "Kleiber_by_Lukas_Baubkus", "Infinite-Sea_by_Aury88")],
    "lomiri-wallpapers-16.04": [f"usr/share/backgrounds/{name}.jpg" for name in (
        "seeding_by_Clements_Engelhardt", "Dragonfly_by_Bolly", "sunset_by_Aitzol_Berasategi",
        "Bridge_by_Sander_Klootwijk", "Wine_by_Jakkub_Mede", "picosdeeuropa_by_Aitzol_Berasategi",
        "life_by_Aitzol_Berasategi", "aitzgorri_by_Aitzol_Berasategi", "friends_by_Aitzol_Berasategi",
        "analogpattern_by_Peter_Nerlich", "greentock_by_Peter_Nerlich", "free_by_Peter_Nerlich",
        "Picture_0B_by_freespace")],
    "mate-backgrounds": ["usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg"] + [
        f"usr/share/backgrounds/mate/nature/{name}.jpg" for name in (
            "Wood", "TwoWings", "LadyBird", "Storm", "RainDrops", "Blinds")],
    "plasma-workspace-wallpapers": ["usr/share/wallpapers/Volna/contents/images/5120x2880.jpg",
                                    "usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg"],
}
TEXT_REPO = ("book_page corner_text grace_hopper motorcycle astronaut cameraman").split()
PEOPLE_SDIST = ["face_recognition-1.3.0/tests/test_images/" + name for name in (
    "obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama_partial_face.jpg", "obama_partial_face2.jpg")]
PEOPLE_SDIST += ["insightface-2.1/python-package/insightface/data/images/t1.jpg"]


def deb_photos(files: dict[str, list[str]], work: Path) -> list[Path]:
    """The files of each Debian package in ``files`` (package -> paths inside it), fetched into ``work``."""
    from signals_faces import fetch_deb

    photos = []
    for package, paths in files.items():
        root = fetch_deb(package, work)
        photos += [root / p for p in paths if (root / p).is_file()]
    return photos


def phone_photos(work: Path) -> list[Path]:
    return deb_photos(PHONE, work)


def large_photos(work: Path) -> list[Path]:
    return deb_photos(LARGE, work)


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


def recipes(names: list[str]):
    """name -> (decode function, OCR signal, faces signal), for the recipes asked for:
    - first: before issue 25 (decode at 1024 on the short side, rapidocr's detector rule, angle classifier);
    - merged: 26065c3, the first speed work with the CNN-checked faces (every HOG candidate checked, OCR on
      1 onnxruntime thread);
    - ocr2: merged with OCR on 2 intra-op threads;
    - skip: merged with strong HOG candidates kept without the CNN check (``faces.CNN_SKIP_MARGIN``);
    - after: today's defaults."""
    from app.library.signal_runner import decode_for_second_pass
    from app.library.signals import faces as face_module
    from app.library.signals.faces import FaceSignal
    from app.library.signals.ocr import OcrSignal
    from cots_core.media import read_image

    def runner_decode(ocr):
        return lambda path: decode_for_second_pass(path, ocr.max_side)

    skip = getattr(face_module, "CNN_SKIP_MARGIN", None)
    plans = {
        "first": lambda: (lambda path: read_image(path, target_size=1024).frames[0],
                          OcrSignal(det_side=0, use_angle=True), FaceSignal()),
        "merged": lambda: (runner_decode(OcrSignal()), OcrSignal(threads=1), FaceSignal(cnn_skip_margin=None)),
        "ocr2": lambda: (runner_decode(OcrSignal()), OcrSignal(threads=2), FaceSignal(cnn_skip_margin=None)),
        "skip": lambda: (runner_decode(OcrSignal()), OcrSignal(threads=1), FaceSignal(cnn_skip_margin=skip)),
        "after": lambda: (runner_decode(OcrSignal()), OcrSignal(), FaceSignal()),
    }
    return {name: plans[name]() for name in names}


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def side_by_side(pool, ocr, faces, path: Path, image):
    """OCR and faces on one photo on two threads, as the runner runs them: (ocr output, faces output, wall s)."""
    start = time.perf_counter()
    text, found = pool.map(lambda signal: signal.extract(str(path), image), (ocr, faces))
    return text, found, time.perf_counter() - start


def stage_rows(photos: list[Path], set_name: str, repeat: int, names: list[str]) -> list[dict]:
    """One dict per photo and repeat: the seconds of every stage per recipe, and what was found."""
    from concurrent.futures import ThreadPoolExecutor

    from PIL import Image

    from app.library.encoder import Encoder
    from cots_core.media import read_image

    encoder = Encoder.load(device="cpu")
    encoder.prepare_images()
    plans = recipes(names)
    for _, ocr, faces in plans.values():
        ocr._load()
        faces.models()
    rows = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for run in range(repeat):
            for index, path in enumerate(photos):
                row: dict = {"set": set_name, "photo": photo_name(path), "run": run, "load": os.getloadavg()[0]}
                with Image.open(path) as header:
                    row["megapixels"] = round(header.width * header.height / 1e6, 1)
                decoded, row["embed_decode"] = timed(read_image, path, encoder.image_size)
                _, row["embed_model"] = timed(encoder.encode_pil, [decoded.frames[0]])
                order = names[index % len(names):] + names[:index % len(names)]  # no recipe always first
                for name in order:
                    decode, ocr, faces = plans[name]
                    image, row[f"{name}.decode"] = timed(decode, str(path))
                    row[f"{name}.side"] = max(image.size)
                    text, found, row[f"{name}.wall"] = side_by_side(pool, ocr, faces, path, image)
                    row[f"{name}.ocr"] = sum(text.stage_seconds.values())
                    row[f"{name}.faces"] = sum(found.stage_seconds.values())
                    for stage, seconds in text.stage_seconds.items():
                        row[f"{name}.ocr.{stage}"] = seconds
                    for stage, seconds in found.stage_seconds.items():
                        row[f"{name}.faces.{stage}"] = seconds
                    row[f"{name}.ocr_words"] = len(" ".join(b.label for b in text.boxes).split())
                    row[f"{name}.faces_found"] = len(found.boxes)
                    row[f"{name}.cnn_checks"] = getattr(found, "cnn_checks", None)
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def table(rows: list[dict], names: list[str]) -> list[str]:
    """Mean seconds per photo per stage and recipe, per set; and the ratio to the batch-1 embedding."""
    lines = ["| set | recipe | decode | OCR detect | OCR recognise | OCR total | faces detect | landmarks | identity "
             "| faces total | second pass, side by side (decode + wall) | embedding (decode + model) "
             "| second pass / embedding | OCR words | faces | CNN checks | load average |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for set_name in dict.fromkeys(r["set"] for r in rows):
        mine = [r for r in rows if r["set"] == set_name]
        embed = statistics.mean(r["embed_decode"] + r["embed_model"] for r in mine)
        load = f"{min(r['load'] for r in mine):.1f}-{max(r['load'] for r in mine):.1f}"
        for recipe in names:
            def mean(key: str, recipe: str = recipe, mine: list[dict] = mine) -> float:
                return statistics.mean(r.get(f"{recipe}.{key}", 0.0) for r in mine)

            second = mean("decode") + mean("wall")
            first = [r for r in mine if r["run"] == 0]
            words = sum(r[f"{recipe}.ocr_words"] for r in first)
            faces = sum(r[f"{recipe}.faces_found"] for r in first)
            checks = sum(r.get(f"{recipe}.cnn_checks") or 0 for r in first)
            lines.append(f"| {set_name} ({len(first)}) | {recipe} | {mean('decode'):.3f} | {mean('ocr.detect'):.3f} | "
                         f"{mean('ocr.recognise'):.3f} | {mean('ocr'):.3f} | {mean('faces.detect'):.3f} | "
                         f"{mean('faces.landmarks'):.3f} | {mean('faces.identity'):.3f} | {mean('faces'):.3f} | "
                         f"{second:.3f} | {embed:.3f} | {second / embed:.1f}x | {words} | {faces} | {checks} | {load} |")
    return lines


def cli_ratio(photos: list[Path], set_name: str, repeat: int, codes: list[Path]) -> list[dict]:
    """``cots index`` into fresh libraries, embeddings only and with the second pass, for each checkout in
    ``codes``, interleaved (run 1: each code's pair, run 2: ...): "done in" and the load average."""
    folder = Path(tempfile.mkdtemp(prefix=f"cots-speed-{set_name.replace(' ', '-')}-"))
    for path in photos:
        (folder / photo_name(path)).symlink_to(path)
    rows = []
    codes = [code.resolve() for code in codes]
    for code in codes:  # each run must import its own checkout's code
        imported = subprocess.run([sys.executable, "-c", "import app; print(app.__file__)"], cwd=code,
                                  capture_output=True, text=True, check=True).stdout.strip()
        if not Path(imported).resolve().is_relative_to(code):
            raise SystemExit(f"{code}: `app` comes from {imported}, not from this checkout")
    for run in range(repeat):
        for code in codes:
            env = dict(os.environ, PYTHONPATH=str(code), HF_HUB_OFFLINE="1")
            env.pop("OMP_NUM_THREADS", None)
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed cots has its .pyc files: so do the runs after the first
            if OMP_THREADS is not None:
                env["OMP_NUM_THREADS"] = OMP_THREADS
            for flags in (["--no-ocr", "--no-faces"], []):
                db = Path(tempfile.mkdtemp()) / "lib.db"
                load = os.getloadavg()[0]
                cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
                # run from the checkout: Python puts the working directory before PYTHONPATH, so from anywhere
                # else every --code would have run the caller's own checkout
                out = subprocess.run([sys.executable, "-m", "app.cli", "index", "--db", str(db), *flags, str(folder)],
                                     env=env, capture_output=True, text=True, check=True, cwd=code).stdout
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                seconds = float(re.search(r"done in ([0-9.]+)s", out).group(1))
                rows.append({"set": set_name, "cli": "embeddings only" if flags else "with second pass", "run": run,
                             "done_in_s": seconds, "code": str(code), "load_before": round(load, 2),
                             "load_after": round(os.getloadavg()[0], 2),
                             # CPU seconds of the whole process (model load included): less disturbed by
                             # the machine's other work than the wall-clock "done in"
                             "cpu_s": round(after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, 2)})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def models_load_seconds() -> dict:
    """Seconds to load the second pass's models in a fresh process (OCR's detector and recogniser sessions,
    dlib's four models): a one-time cost inside `cots index`'s "done in" that the embedding pass's own load is not (the
    encoder loads before the run starts), so it weighs on a 19-photo set and not on a library."""
    code = ("import time; from app.library.signals.ocr import OcrSignal; from app.library.signals.faces import "
            "FaceSignal; t = time.perf_counter(); e = OcrSignal()._load(); e._load_det_model(); e._load_rec_model(); "
            "o = time.perf_counter() - t; t = time.perf_counter(); FaceSignal().models(); "
            "print(o, time.perf_counter() - t)")  # rapidocr opens its ONNX sessions on first use: opened here
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    ocr, faces = map(float, subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                           check=True, cwd=ROOT).stdout.split())
    return {"models_load_s": round(ocr + faces, 2), "ocr_load_s": round(ocr, 2), "faces_load_s": round(faces, 2),
            "load": round(os.getloadavg()[0], 2)}


def cli_summary(rows: list[dict], sets: list[str]) -> list[str]:
    """Per set and checkout: the medians of "done in" and the second pass's ratio to the embedding pass, also
    less the median one-time model load (``models_load_seconds``) when measured."""
    loads = [r["models_load_s"] for r in rows if "models_load_s" in r]
    fixed = statistics.median(loads) if loads else 0.0
    lines = [f"one-time load of the second pass's models: {fixed:.2f} s (median of {len(loads)})",
             "| set | code | embeddings only (median s) | with the second pass | second pass alone "
             "| second pass / embedding (median; per run) | the same less the models' load "
             "| with / without (median) | CPU s without / with (median) | load average |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in sets:
        for code in dict.fromkeys(r["code"] for r in rows if r.get("cli") and r["set"] == name):
            cli = [r for r in rows if r.get("cli") and r["set"] == name and r["code"] == code]
            only = [r["done_in_s"] for r in cli if r["cli"] == "embeddings only"]
            both = [r["done_in_s"] for r in cli if r["cli"] != "embeddings only"]
            ratios = [(b - o) / o for o, b in zip(only, both)]
            steady = [(b - o - fixed) / o for o, b in zip(only, both)]
            loads = [r["load_before"] for r in cli]
            cpu = {kind: [r["cpu_s"] for r in cli if "cpu_s" in r and (r["cli"] == "embeddings only") == kind]
                   for kind in (True, False)}
            cpu_text = (f"{statistics.median(cpu[True]):.1f} / {statistics.median(cpu[False]):.1f}"
                        if cpu[True] and cpu[False] else "-")
            lines.append(f"| {name} | {code} | {statistics.median(only):.1f} | {statistics.median(both):.1f} | "
                         f"{statistics.median(both) - statistics.median(only):.1f} | "
                         f"{statistics.median(ratios):.2f}x ({', '.join(f'{x:.2f}' for x in ratios)}) | "
                         f"{statistics.median(steady):.2f}x ({', '.join(f'{x:.2f}' for x in steady)}) | "
                         f"{statistics.median(b / o for o, b in zip(only, both)):.2f}x | {cpu_text} | "
                         f"{min(loads):.1f}-{max(loads):.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cots_speed_bench")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--jsonl", type=Path, help="append the raw rows here")
    parser.add_argument("--recipes", nargs="+", default=["merged", "after"],
                        choices=["first", "merged", "ocr2", "skip", "after"], help="per-stage recipes, in one loop")
    parser.add_argument("--sets", nargs="+", default=["phone", "text or people"], choices=["phone", "text or people", "large"])
    parser.add_argument("--cli", action="store_true", help="also time `cots index` with and without the second pass")
    parser.add_argument("--cli-only", action="store_true", help="only the `cots index` timings")
    parser.add_argument("--load-only", action="store_true",
                        help="only the second pass's one-time model load, --repeat times (fresh processes)")
    parser.add_argument("--summarise", type=Path, help="only print the `cots index` table of these raw rows")
    parser.add_argument("--code", type=Path, nargs="+", default=[ROOT],
                        help="with --cli: the checkouts whose `cots` runs, interleaved run by run")
    args = parser.parse_args()
    if args.summarise:
        rows = [json.loads(line) for line in args.summarise.read_text().splitlines() if line.strip()]
        print("\n".join(cli_summary(rows, list(dict.fromkeys(r["set"] for r in rows if "set" in r)))))
        return
    if args.load_only:
        rows = [models_load_seconds() for _ in range(args.repeat)]
        print("\n".join(json.dumps(r) for r in rows))
        if args.jsonl:
            with args.jsonl.open("a") as out:
                out.write("".join(json.dumps(r) + "\n" for r in rows))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    fetch = {"phone": phone_photos, "text or people": text_or_people_photos, "large": large_photos}
    sets = {name: fetch[name](args.work) for name in args.sets}
    print(f"cpus={os.cpu_count()} OMP_NUM_THREADS={OMP_THREADS} (shared machine: read the "
          f"ratios, measured in one loop); photos: " + ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    rows = []
    if args.cli or args.cli_only:
        rows.append(models_load_seconds())
        for name, photos in sets.items():
            rows += cli_ratio(photos, name, args.repeat, args.code)
    for name, photos in sets.items() if not args.cli_only else ():
        rows += stage_rows(photos, name, args.repeat, args.recipes)
    if not args.cli_only:
        print("\n".join(table([r for r in rows if "embed_model" in r], args.recipes)))
    if args.cli or args.cli_only:
        print("\n".join(cli_summary(rows, list(sets))))
    if args.jsonl:
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        with args.jsonl.open("a") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
