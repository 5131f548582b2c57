"""The window with a large library: first paint, scrolling, thumbnail fill, keystroke to results, memory.

    nice python bench/gui_100k.py [--n 100000] [--workdir DIR] [--starts 12] [--model cots-lite] [--label TEXT]

The library is synthetic but read through the app's own code: N media rows (``storage.media.upsert_media``,
capture times spread over ten years) whose paths are N symbolic links to the real photos of
tests/data/real_photos (so every row has its own file, its own thumbnail and its own cache entry). With the
default ``--model fake`` the embeddings are random 16-d ones of the tests' fake model, whose text tower costs
nothing; with ``--model cots-lite`` they are realistic cots-lite embeddings (bench/realistic_embeddings.py) and
the window loads the real model as ``cots gui`` does (on a worker, the lean text path), so each query pays its
real text encoding; the queries are then the repository's real captions. Each start runs in a fresh process
(offscreen Qt): the first with an empty thumbnail cache, ``--starts`` more with the cache it left. The UI
thread's longest gap is reported per phase: from the window showing until the model and the first query's
indexes are loaded and ``SETTLE_S`` more have passed (``ui_gap_start_max_ms``), while scrolling (``ui_gap_max_ms``), and while answering the
queries (``ui_gap_query_max_ms``, the first query included). Raw rows go to bench/results/gui_100k.jsonl.
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
SETTLE_S = 1.5  # idle time after the model and indexes are loaded, before scrolling


def build(work: Path, n: int, model: str) -> Path:
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
    if model == "fake":
        encoder = Encoder(FakeModel(), device="cpu", source="fake")
        vectors = np.random.default_rng(0).standard_normal((n, 16)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    else:
        from bench.realistic_embeddings import EmbeddingSource

        encoder = Encoder.load(model, text_first=True)  # embeds the vocabulary below
        vectors = EmbeddingSource.build(augmentations=10).items(n, seed=0)
    library = Library(work / "library.db")
    library.set_model(encoder.model_id, model)
    library.add_folder(folder)
    folder_id = library.db.conn.execute("SELECT id FROM folders").fetchone()[0]
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


def query_texts(model: str, count: int) -> list[str]:
    """Distinct queries (the engine caches a repeated one): real captions for a real model."""
    if model == "fake":
        return [f"photo {q}" for q in range(count)]
    from bench.realistic_embeddings import real_captions

    captions = [c for c in real_captions() if len(c) < 60]
    return [captions[i * len(captions) // count] for i in range(count)]


def watch_stalls(path: str, last: list[float], late_s: float = 0.06) -> None:
    """Append every thread's Python stack to ``path`` whenever the UI heartbeat is ``late_s`` late: what held
    the UI thread, or the GIL (``faulthandler`` needs no GIL to write them)."""
    import faulthandler
    import threading

    out = open(path, "a")  # noqa: SIM115 - open until the process ends

    def watch():
        dumped_for = None
        while True:
            time.sleep(0.02)
            late = time.perf_counter() - last[0]
            if late > late_s and dumped_for != last[0]:
                dumped_for = last[0]
                out.write(f"\n=== UI late by {late * 1000:.0f} ms\n")
                out.flush()
                faulthandler.dump_traceback(out, all_threads=True)
                out.flush()

    threading.Thread(target=watch, daemon=True).start()


def measure(db: Path, cache: Path, queries: int, model_name: str, stacks: str | None = None) -> dict:
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
    # a real model is loaded by the service on a worker, as `cots gui` loads it
    encoder = Encoder(FakeModel(), device="cpu", source="fake") if model_name == "fake" else None
    service = EngineService(db, encoder=encoder)
    settings = Settings(QSettings(str(cache / "settings.ini"), QSettings.IniFormat))
    window = MainWindow(service, settings, ThumbnailCache(cache / "thumbnails"), model_label=model_name, auto_index=False)
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
    if stacks:
        watch_stalls(stacks, last)

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
    # versions of the app from before issue 32's preload have no search_prepared: nothing to wait for there
    model_ready = wait(lambda: window.model_ready and getattr(window.searching, "search_prepared", True))
    # then a moment's look at the window, so that the scrolling starts from an idle window (the first status
    # refresh and folder listing done) and its gaps are the scrolling's own, whenever the start's work ends
    settle = time.perf_counter() + SETTLE_S
    wait(lambda: time.perf_counter() > settle)
    start_gaps = list(gaps)
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
    gaps.clear()
    latencies = []
    for text in query_texts(model_name, queries):
        window.search.box.setText(text)
        begin = time.perf_counter()
        window.search.emit_query()  # what the debounce timer fires (DEBOUNCE_MS after the last key)
        wait(lambda text=text: not model.browsing and window.searching.last[0] == f"“{text}”")
        grid.viewport().repaint()
        latencies.append(time.perf_counter() - begin)
        window.search.clear()
        wait(lambda: model.browsing)
    query_gaps = list(gaps)
    first_query = latencies[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    window.close()
    frames.sort()
    latencies.sort()

    def pct(values, p):
        return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1)

    return {"model": model_name, "process_to_shown_s": round(shown - started, 2), "first_paint_s": round(first_paint, 3),
            "thumbs_in_view_s": round(fill_first, 2), "model_and_indexes_s": round(fill_first + model_ready, 2),
            "ui_gap_start_max_ms": round(max(start_gaps, default=0) * 1000, 1),
            "scroll_frame_p50_ms": pct(frames, 0.5),
            "scroll_frame_p95_ms": pct(frames, 0.95), "scroll_frame_max_ms": pct(frames, 1.0),
            "ui_gap_max_ms": round(max(scroll_gaps, default=0) * 1000, 1),
            "thumbs_after_scroll_s": round(fill_after_scroll, 2), "first_query_ms": round(first_query * 1000, 1),
            "query_p50_ms": pct(latencies, 0.5), "query_p95_ms": pct(latencies, 0.95),
            "ui_gap_query_max_ms": round(max(query_gaps, default=0) * 1000, 1),
            "peak_rss_mb": round(rss), "icons_cached": len(model._icons)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--workdir")
    parser.add_argument("--model", default="fake", help="fake (no text cost) or a real model, e.g. cots-lite")
    parser.add_argument("--starts", type=int, default=1, help="second starts after the first (cold cache) one")
    parser.add_argument("--label", default="", help="appended to each row's start (which code was measured)")
    parser.add_argument("--stacks", help="append the threads' stacks to this file whenever the UI is 60 ms late")
    parser.add_argument("--measure", nargs=2, metavar=("DB", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), Path(args.measure[1]), args.queries, args.model, args.stacks)))
        return 0
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cots-gui100k-"))
    db = work / "library.db"
    begin = time.perf_counter()
    if not db.exists():
        build(work, args.n, args.model)
    built = round(time.perf_counter() - begin, 1)
    # as app/cli sets it for `cots gui`: idle OpenMP threads sleep instead of spinning
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1", OMP_WAIT_POLICY="PASSIVE")
    rows = []
    cold = not (work / "cache").exists()
    for number in range(1 + args.starts):
        start = "cold thumbnail cache" if cold and number == 0 else "second start"
        command = [sys.executable, __file__, "--queries", str(args.queries), "--model", args.model,
                   "--measure", str(db), str(work / "cache")] + (["--stacks", args.stacks] if args.stacks else [])
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        row = {"n": args.n, "start": start + (f", {args.label}" if args.label else ""), "build_s": built,
               "cpu_count": os.cpu_count(), "load_average": round(os.getloadavg()[0], 2),
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
