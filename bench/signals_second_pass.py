"""The second pass end to end (decode for the signals + OCR + faces + one transaction per photo), run by hand:

    nice -n 10 .venv/bin/python bench/signals_second_pass.py [--photos 40]

Indexes ``--photos`` real photos (scikit-image's samples at 1600 px, every third with a line of text drawn
on it) with the fast fake encoder of the tests (so that the embedding phase costs little) and reports the
wall time of the "signals" phase per photo, OCR and faces on, then each alone (fresh libraries; model
loading included once per run). Shared 2-core machine: read it as an upper bound.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "app"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    args = parser.parse_args()

    from fakes import fake_encoder, real_photo
    from PIL import ImageDraw, ImageFont

    from app.library import Library
    from app.library.indexer import Indexer, IndexOptions

    folder = Path(tempfile.mkdtemp(prefix="cots-second-pass-")) / "photos"
    folder.mkdir()
    names = ["astronaut", "coffee", "chelsea", "rocket", "cat", "camera"]
    for i in range(args.photos):
        photo = real_photo(names[i % len(names)], 1600)
        if i % 3 == 0:
            ImageDraw.Draw(photo).text((40, 40), f"GATE B{i} EXIT", fill="white", font=ImageFont.load_default(size=64))
        photo.save(folder / f"IMG_{i:04d}.jpg", quality=90)
    for off in (frozenset(), frozenset({"faces"}), frozenset({"ocr"})):
        times: dict[str, float] = {}
        last = {"phase": None, "at": time.perf_counter()}

        def progress(p, times=times, last=last) -> None:
            now = time.perf_counter()
            if last["phase"] is not None:
                times[last["phase"]] = times.get(last["phase"], 0.0) + now - last["at"]
            last["phase"], last["at"] = p.phase, now

        with Library(Path(tempfile.mkdtemp()) / "lib.db") as library:
            library.add_folder(folder)
            report = Indexer(library, fake_encoder(), IndexOptions(vocabulary=False, signals_off=off),
                             progress=progress).run()
        running = "ocr + faces" if not off else f"{'ocr' if 'faces' in off else 'faces'} only"
        print(f"{running:12s}: second pass {times.get('signals', 0.0) / max(report.signals_done, 1):.2f} s per photo "
              f"({report.signals_done} photos, {report.signals_failed} failures); embedding phase with the fake "
              f"encoder {times.get('index', 0.0) / args.photos * 1e3:.0f} ms per photo")


if __name__ == "__main__":
    main()
