"""The window with a large library: first paint, scrolling, thumbnail fill, keystroke to results, memory.

    nice python bench/gui_100k.py [--n 100000] [--workdir DIR] [--write]

The library is synthetic but read through the app's own code: N media rows (``storage.media.upsert_media``,
capture times spread over ten years) whose paths are N symbolic links to the real photos of
tests/data/real_photos (so every row has its own file, its own thumbnail and its own cache entry), with
random 16-d embeddings of the tests' fake model (its text tower answers the queries: the model's own cost
is measured by bench/cold_start.py and bench/engine_at_scale.py, not here). Each start runs in a fresh
process (offscreen Qt) with an empty or a filled thumbnail cache. Raw rows go to
bench/results/gui_100k.jsonl; ``--write`` puts the table into bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "app")]
RESULTS = ROOT / "bench" / "results" / "gui_100k.jsonl"
SECTION = "## The window with 100,000 items (bench/gui_100k.py)"
YEARS = 10


def build(work: Path, n: int) -> Path:
    import numpy as np
    from fakes import FakeModel

    from app.library import Library
    from app.library.db import vector_to_blob
    from app.library.encoder import Encoder
    from app.library.indexer import Indexer, IndexOptions
    from app.library.storage.media import upsert_media

    photos = sorted((ROOT / "tests" / "data" / "real_photos").glob("*.jpg"))
    folder = work / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    encoder = Encoder(FakeModel(), device="cpu", source="fake")
    library = Library(work / "library.db")
    library.set_model(encoder.model_id, "fake")
    library.add_folder(folder)
    folder_id = library.db.conn.execute("SELECT id FROM folders").fetchone()[0]
    vectors = np.random.default_rng(0).standard_normal((n, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = time.time()
    for start in range(0, n, 20_000):
        with library.db.transaction() as conn:
            generation = library.db.bump_generation(conn)
            for i in range(start, min(n, start + 20_000)):
                link = folder / f"IMG_{i:06d}.jpg"
                if not link.exists():
                    link.symlink_to(photos[i % len(photos)])
                taken = now - (i / n) * YEARS * 365 * 86400
                media_id = upsert_media(conn, {
                    "path": str(link), "folder_id": folder_id, "name": link.stem, "folder_names": "photos",
                    "kind": "image", "size": 100_000 + i, "mtime_ns": int(taken * 1e9), "width": 512, "height": 384,
                    "captured_at": taken, "status": "ok", "model_id": encoder.model_id, "indexed_at": now})
                conn.execute("INSERT INTO embeddings(media_id, model_id, vector, gen) VALUES (?, ?, ?, ?)",
                             (media_id, encoder.model_id, vector_to_blob(vectors[i]), generation))
    Indexer(library, encoder, IndexOptions())._embed_vocabulary(time.perf_counter())
    library.vectors("media", encoder.model_id)  # built from SQLite once, saved at close
    library.close()
    return work / "library.db"


def measure(db: Path, cache: Path, queries: int) -> dict:
    """One start of the window (this process): the numbers of one row."""
    started = time.perf_counter()
    from fakes import FakeModel
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui.engine_service import EngineService
    from app.gui.settings import Settings
    from app.gui.thumbs import ThumbnailCache
    from app.gui.window import MainWindow
    from app.library.encoder import Encoder

    app = QApplication.instance() or QApplication([])
    service = EngineService(db, encoder=Encoder(FakeModel(), device="cpu", source="fake"))
    settings = Settings(QSettings(str(cache / "settings.ini"), QSettings.IniFormat))
    window = MainWindow(service, settings, ThumbnailCache(cache / "thumbnails"), model_label="fake", auto_index=False)
    window.resize(1500, 950)
    window.show()
    shown = time.perf_counter()
    gaps, last = [], [time.perf_counter()]

    def beat():  # the UI thread's heartbeat: a long gap is a time it was blocked
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    heart = QTimer(interval=5)
    heart.timeout.connect(beat)
    heart.start()

    def wait(condition, timeout=120.0) -> float:
        begin = time.perf_counter()
        while not condition():
            app.processEvents()
            if time.perf_counter() - begin > timeout:
                raise SystemExit("timed out")
            time.sleep(0.001)
        return time.perf_counter() - begin

    model, grid = window.model, window.view
    wait(lambda: model.browsing and model.rowCount() > 0 and model.hit(0) is not None)
    grid.viewport().repaint()
    first_paint = time.perf_counter() - shown

    def thumbs_in_view() -> bool:
        first = grid.first_visible_row() or 0
        rows = range(first, min(model.rowCount(), first + grid.columns() * 4))
        return all(model.hit(r) is not None and model._key(model.hit(r)) in model._icons for r in rows)

    fill_first = wait(thumbs_in_view)
    gaps.clear()
    frames, bar = [], grid.verticalScrollBar()
    for _ in range(300):  # a fast flick through the library: one page per frame
        begin = time.perf_counter()
        bar.setValue(min(bar.maximum(), bar.value() + bar.pageStep()))
        grid.viewport().repaint()
        app.processEvents()
        frames.append(time.perf_counter() - begin)
    fill_after_scroll = wait(thumbs_in_view)
    scroll_gaps = sorted(gaps)
    latencies = []
    for q in range(queries):
        window.search.box.setText(f"photo {q}")
        begin = time.perf_counter()
        window.search.emit_query()  # what the debounce timer fires (DEBOUNCE_MS after the last key)
        wait(lambda q=q: not model.browsing and window.results_label.text().find(f"photo {q}") >= 0)
        grid.viewport().repaint()
        latencies.append(time.perf_counter() - begin)
        window.search.clear()
        wait(lambda: model.browsing)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    window.close()
    frames.sort()
    latencies.sort()

    def pct(values, p):
        return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1)

    return {"process_to_shown_s": round(shown - started, 2), "first_paint_s": round(first_paint, 3),
            "thumbs_in_view_s": round(fill_first, 2), "scroll_frame_p50_ms": pct(frames, 0.5),
            "scroll_frame_p95_ms": pct(frames, 0.95), "scroll_frame_max_ms": pct(frames, 1.0),
            "ui_gap_max_ms": round(max(scroll_gaps, default=0) * 1000, 1),
            "thumbs_after_scroll_s": round(fill_after_scroll, 2), "query_p50_ms": pct(latencies, 0.5),
            "query_p95_ms": pct(latencies, 0.95), "peak_rss_mb": round(rss), "icons_cached": len(model._icons)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--workdir")
    parser.add_argument("--measure", nargs=2, metavar=("DB", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]), args.queries)))
        return 0
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cots-gui100k-"))
    db = work / "library.db"
    begin = time.perf_counter()
    if not db.exists():
        build(work, args.n)
    built = round(time.perf_counter() - begin, 1)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1")
    rows = []
    for start in ("cold thumbnail cache", "second start"):
        done = subprocess.run([sys.executable, __file__, "--queries", str(args.queries), "--measure", str(db),
                               str(work / "cache")], capture_output=True, text=True, env=env, timeout=1800)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        row = {"n": args.n, "start": start, "build_s": built, "cpu_count": os.cpu_count(),
               **json.loads(done.stdout.strip().splitlines()[-1])}
        rows.append(row)
        print(json.dumps(row), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
