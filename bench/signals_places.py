"""Cost of the first-pass signals (places and EXIF) on real photos, run by hand:

    nice -n 10 .venv/bin/python bench/signals_places.py [--photos 200] [--repeats 5]

Measures, each as a median over ``--repeats``: the reverse geocoder's import + load in a fresh
interpreter (the one-time cost of the first photo with GPS in a process), one lookup, and per photo: the
EXIF header read + place lookup (what the indexer adds to each file) next to the decode the indexer
already does. Photos are scikit-image's real sample photos at camera size (3000 px), saved as JPEGs with
GPS, camera and capture time written into their EXIF, spread over real cities.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "app"))

CITIES = [(48.8566, 2.3522), (35.6895, 139.6917), (40.7128, -74.0060), (-33.8688, 151.2093), (41.9028, 12.4964),
          (52.52, 13.405), (-22.9068, -43.1729), (30.0444, 31.2357), (55.7558, 37.6173), (19.4326, -99.1332)]
LOAD = "import time; t = time.perf_counter(); import reverse_geocode; reverse_geocode.GeocodeData(); " \
       "print(time.perf_counter() - t)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from fakes import real_photo, save_with_exif

    from app.library.signals import exif as exif_module
    from app.library.signals.exif import ExifSignal
    from app.library.signals.place import PlaceSignal, geocoder, place_of
    from cots_core.media import read_image

    loads = [float(subprocess.run([sys.executable, "-c", LOAD], capture_output=True, text=True, check=True).stdout)
             for _ in range(args.repeats)]
    print(f"geocoder import + load (fresh process): median {statistics.median(loads):.2f} s "
          f"(min {min(loads):.2f}, max {max(loads):.2f})")
    geocoder()
    lookups = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        for lat, lon in CITIES * 100:
            place_of(lat, lon)
        lookups.append((time.perf_counter() - started) / (len(CITIES) * 100))
    print(f"one place lookup (64 nearest places compared): median {statistics.median(lookups) * 1e3:.3f} ms")

    folder = Path(tempfile.mkdtemp(prefix="cots-places-"))
    names = ["astronaut", "coffee", "chelsea", "rocket", "cat"]
    paths = []
    for i in range(args.photos):
        path = folder / f"IMG_{i:04d}.jpg"
        save_with_exif(real_photo(names[i % len(names)], 3000), path, gps=CITIES[i % len(CITIES)],
                       camera=("Canon", "Canon EOS 5D"), taken="2019:06:30 12:00:00")
        paths.append(str(path))
    place, exif = PlaceSignal(), ExifSignal()
    signal_ms, decode_ms = [], []
    for _ in range(args.repeats):
        exif_module._read_exif_cached.cache_clear()  # each repeat reads the headers again
        started = time.perf_counter()
        for path in paths:
            place.extract(path, None)
            exif.extract(path, None)
        signal_ms.append((time.perf_counter() - started) / len(paths) * 1e3)
        started = time.perf_counter()
        for path in paths:
            read_image(path, 224)
        decode_ms.append((time.perf_counter() - started) / len(paths) * 1e3)
    print(f"per photo ({args.photos} JPEGs of 3000 px with GPS): place + EXIF {statistics.median(signal_ms):.2f} ms, "
          f"the indexer's own decode {statistics.median(decode_ms):.2f} ms (medians of {args.repeats})")


if __name__ == "__main__":
    main()
