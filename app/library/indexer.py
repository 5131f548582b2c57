"""The indexing pipeline: scan, plan, decode in a bounded thread pool, encode batches, write.

Crash safety comes from the order of things: each batch is written in one transaction (rows,
embeddings, segments, captions and the generation counter together), rows are upserted by path,
moves and deletions are single transactions, and the vector indexes are caches that
``Library.vectors`` repairs from SQLite. Killing the process at any point and running again gives
the state an uninterrupted run would have given.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.library.errors import LibraryError, MediaError
from app.library.library import Library
from app.library.lock import indexing_lock
from app.library.pathtext import safe_text, searchable_text, to_db
from app.library.planning import Job, plan_run
from app.library.scanner import (
    LibraryScanner,
    ScannedFile,
    ScanResult,
    display_name,
    folder_names,
    read_caption,
)
from app.library.signal_runner import (
    SignalRunner,
    active_signals,
    extract_safely,
    prepare_in_background,
    store_result,
)
from app.library.signals import Signal, SignalOutput
from app.library.storage.media import (
    delete_media_data,
    media_state,
    replace_scan_errors,
    update_media,
    upsert_media,
)
from app.library.storage.vectors import (
    StoredVectors,
    add_vocabulary,
    store_text_vectors,
    store_vectors,
    unembedded_count,
    vocabulary_size,
    vocabulary_to_embed,
)
from app.library.vocabulary import load_vocabulary
from cots_core.media import DEFAULT_MAX_PIXELS, MEDIA_KINDS, DecodedMedia, ReadOptions, content_hash

if TYPE_CHECKING:
    import torch

    from app.library.encoder import Encoder

log = logging.getLogger(__name__)


@dataclass
class IndexOptions:
    batch_size: int | None = None  # None: chosen for the device
    workers: int | None = None  # decoding threads; None: decode_workers(device)
    video_every_s: float = 2.0
    video_max_frames: int = 32
    max_pixels: int = DEFAULT_MAX_PIXELS
    retry_failed: bool = False  # retry files that failed before even if unchanged
    save_every_s: float = 60.0  # write the vector indexes this often during long runs
    vocabulary: bool = True  # embed the shipped vocabulary (for image -> text) when missing
    signals: bool = True  # read places, EXIF, text in photos and faces (app.library.signals)
    signals_off: frozenset[str] | None = None  # signals to skip; None: the library's setting


def decode_workers(device_type: str, cores: int | None = None) -> int:
    """Default decoding threads: on the CPU the model needs the cores too, so one per core up to 8; on a GPU
    decoding is the pipeline's bound (about 50 photos/s per core against thousands for the model), so every core."""
    cores = cores or os.cpu_count() or 1
    return cores if device_type in ("cuda", "mps") else min(8, cores)


@dataclass
class IndexProgress:
    """One progress report; ``phase`` is scan | prepare (the image runtime is built, once per model) | index |
    texts | signals (the second pass: text in photos, faces) | done."""

    phase: str
    done: int
    total: int
    rate: float  # items per second in this phase
    eta_s: float | None
    current: str | None
    failed: int
    elapsed_s: float


class IndexControl:
    """Pause / resume / cancel for a running indexer, from any thread: the two events ``Indexer`` takes
    (``cancel_event`` set = stop, ``pause_event`` set = hold)."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self.pause_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()
        self.pause_event.clear()  # a paused worker must wake up to see the cancel

    def pause(self) -> None:
        self.pause_event.set()

    def resume(self) -> None:
        self.pause_event.clear()

    @property
    def paused(self) -> bool:
        return self.pause_event.is_set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


@dataclass
class IndexReport:
    scanned: int = 0
    added: int = 0
    updated: int = 0
    moved: int = 0
    touched: int = 0  # (size, mtime) changed, content did not: embedding kept
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    model_id: str | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, error) of this run's failures
    signals_done: int = 0  # files the second pass read
    signals_failed: int = 0  # (file, signal) results that are errors, both passes
    signal_errors: list[tuple[str, str, str]] = field(default_factory=list)  # (signal, path, error)


@dataclass
class _Result:
    job: Job
    hash: str | None = None
    decoded: DecodedMedia | None = None
    pixels: torch.Tensor | None = None
    caption: str | None = None
    error: str | None = None
    touched: bool = False
    vector: np.ndarray | None = None
    segment_vectors: np.ndarray | None = None
    caption_vector: np.ndarray | None = None
    signals: list[tuple[Signal, SignalOutput | None, str | None]] = field(default_factory=list)


ProgressCallback = Callable[[IndexProgress], None]


class IndexCancelled(Exception):
    pass


def _hash_or_none(file: ScannedFile) -> str | None:
    try:
        return content_hash(file.path)
    except OSError:
        return None


class Indexer:
    """Brings a library's database and vector indexes up to date with its folders.

    ``progress`` is called from the thread that runs ``run`` (a GUI must hand it to its own
    thread). ``pause()``, ``resume()`` and ``cancel()`` may be called from any thread.
    ``on_model_switch(model_id)`` is called when a run with a new model has re-embedded everything and
    the library has switched to it, before the old model's rows are dropped: a searcher swaps its
    encoder there, so no search falls between the two models.
    """

    def __init__(self, library: Library, encoder: Encoder, options: IndexOptions | None = None,
                 progress: ProgressCallback | None = None, cancel_event: threading.Event | None = None,
                 pause_event: threading.Event | None = None,
                 on_model_switch: Callable[[str], None] | None = None):
        self.library = library
        self.encoder = encoder
        self.options = options or IndexOptions()
        self.progress = progress
        self.cancel_event = cancel_event or threading.Event()
        self.pause_event = pause_event or threading.Event()  # set = paused
        self.on_model_switch = on_model_switch
        self._signals: list[Signal] = []  # this run's active signals
        self._preparing: threading.Thread | None = None  # their models loading (prepare_in_background)

    def cancel(self) -> None:
        self.cancel_event.set()
        self.pause_event.clear()

    def pause(self) -> None:
        self.pause_event.set()

    def resume(self) -> None:
        self.pause_event.clear()

    # -- helpers -----------------------------------------------------------------------------
    def _check(self) -> None:
        while self.pause_event.is_set() and not self.cancel_event.is_set():
            time.sleep(0.05)
        if self.cancel_event.is_set():
            raise IndexCancelled

    def _report(self, phase: str, done: int, total: int, started: float, current: str | None, failed: int,
                run_started: float) -> None:
        if not self.progress:
            return
        elapsed = max(time.perf_counter() - started, 1e-6)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 and total >= done else None
        self.progress(IndexProgress(phase, done, total, rate, eta, current, failed,
                                    time.perf_counter() - run_started))

    # -- run ---------------------------------------------------------------------------------
    def run(self) -> IndexReport:
        """Index every watched folder; returns what changed. Raises nothing for bad files, and
        LibraryError when another process is already indexing the same library."""
        with indexing_lock(self.library.path):
            return self._run()

    def _run(self) -> IndexReport:
        lib = self.library
        model_id = self.encoder.model_id
        report = IndexReport(model_id=model_id)
        run_started = time.perf_counter()
        if lib.model_id is None:
            lib.set_model(model_id, self.encoder.source)
        folders = lib.db.folders()
        if not folders:
            raise LibraryError("the library has no folders yet: `cots index FOLDER` adds one")
        if self.options.signals:
            self._signals = active_signals(lib, self.options.signals_off)
        try:
            scan = self._scan(folders, report, run_started)
            for kind in ("media", "segment", "text"):  # loaded (and repaired) now, so writes keep them current
                lib.vectors(kind, model_id, dim=self.encoder.embed_dim)
            jobs = self._plan(scan, folders, report)
            if jobs:  # new photos will wait for the second pass: its models load beside the embedding pass
                self._preparing = prepare_in_background(self._signals)
            self._pipeline(jobs, report, run_started)
            if self.options.vocabulary:
                self._embed_vocabulary(run_started)
            # once per model: later searches then answer text without loading torch (cots_core.text_graph)
            self.encoder.prepare_query_graphs(on_export=lambda: self._report("prepare", 0, 0, time.perf_counter(),
                                                                             None, 0, run_started))
        except IndexCancelled:
            report.cancelled = True
        finally:
            lib.save_vectors()
        if not report.cancelled and lib.model_id != model_id:
            self._switch_model(model_id)
        if not report.cancelled and self._signals:
            try:
                self._second_pass(report, run_started)
            except IndexCancelled:
                report.cancelled = True
        report.seconds = time.perf_counter() - run_started
        self._report("done", report.scanned, report.scanned, run_started, None, report.failed, run_started)
        return report

    def _scan(self, folders, report: IndexReport, run_started: float):
        started = time.perf_counter()

        def on_folder(path: Path, found: int) -> None:
            self._check()
            self._report("scan", found, 0, started, str(path), 0, run_started)

        scanner = LibraryScanner(on_folder=on_folder)
        scan = scanner.scan([p for _, p in folders])
        report.scanned = len(scan.files)
        with self.library.db.transaction() as conn:
            replace_scan_errors(conn, [(to_db(p), safe_text(e), time.time()) for p, e in scan.errors.items()])
        return scan

    def _plan(self, scan: ScanResult, folders, report: IndexReport) -> list[Job]:
        """Apply the run's plan (``planning.plan_run``): moves and deletions now; the files to read returned."""
        lib = self.library
        plan = plan_run(scan, media_state(lib.db.conn, self.encoder.model_id), self.options.retry_failed,
                        _hash_or_none)
        report.unchanged += plan.unchanged
        if plan.moves:
            folder_ids = {str(p): fid for fid, p in folders}
            with lib.db.transaction() as conn:
                for file, row in plan.moves:
                    update_media(conn, row.id, {
                        "path": to_db(file.path), "folder_id": folder_ids.get(str(file.root)),
                        "name": searchable_text(display_name(file.path)),
                        "folder_names": searchable_text(folder_names(file.path, file.root)),
                        "mtime_ns": file.mtime_ns})
            report.moved += len(plan.moves)
        if plan.gone:
            lib.delete_media(plan.gone)
            report.removed += len(plan.gone)
        return plan.jobs

    # -- decoding (worker threads) -----------------------------------------------------------
    def _decode(self, job: Job) -> _Result:
        file = job.file
        result = _Result(job)
        try:
            if self.cancel_event.is_set():
                return result
            kind = MEDIA_KINDS[file.kind]
            # Size and header first, then a hash of at most 2 MiB, then the reader reads what it decodes:
            # a file is never read whole into memory (a 2 GB file named .jpg costs nothing).
            kind.check(file.path)
            result.hash = self._hash(file)
            if job.has_embedding and result.hash == job.old_hash:
                result.touched = True
                return result
            result.decoded = kind.read(file.path, self._read_options())
            import torch  # here, not at the top: the GUI imports this module for its first paint

            result.pixels = torch.stack([self.encoder.preprocess(frame) for frame in result.decoded.frames])
            if file.kind == "image":  # first-pass signals read the file's header while we have it
                result.signals = [(s, *extract_safely(s, str(file.path), result.decoded.frames[0]))
                                  for s in self._signals if not s.second_pass]
            result.decoded.frames = []  # the pixels are all we keep
            result.caption = read_caption(file.path, file.root)
        except MediaError as error:
            result.error = str(error)
        except Exception as error:  # noqa: BLE001 - one odd file must never stop a run
            log.debug("unexpected error reading %s", file.path, exc_info=True)
            result.error = f"{type(error).__name__}: {error}"
        return result

    def _read_options(self) -> ReadOptions:
        return ReadOptions(self.encoder.image_size, self.options.max_pixels, self.options.video_every_s,
                           self.options.video_max_frames)

    @staticmethod
    def _hash(file: ScannedFile) -> str:
        try:
            return content_hash(file.path)
        except FileNotFoundError as error:
            raise MediaError("file vanished before it could be read") from error
        except OSError as error:
            raise MediaError(f"file cannot be read: {error.strerror or error}") from error

    # -- pipeline ----------------------------------------------------------------------------
    def _pipeline(self, jobs: list[Job], report: IndexReport, run_started: float) -> None:
        if not jobs:
            return
        # ONNX Runtime on CPU when installed; the first run per model builds its graph (14-60 s): said as a phase
        self.encoder.prepare_images(on_export=lambda: self._report("prepare", 0, 0, time.perf_counter(), None, 0,
                                                                   run_started))
        batch_size = self.options.batch_size or self.encoder.default_batch_size()
        workers = self.options.workers or decode_workers(self.encoder.device.type)
        ahead = max(2 * batch_size, 4 * workers)  # decoded items waiting for the model, at most
        started = time.perf_counter()
        last_save = started
        total = len(jobs)
        done = 0
        pending: list[_Result] = []  # decoded, waiting for the next batch
        pending_images = 0
        queue = deque(jobs)
        in_flight: deque[Future] = deque()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cots-decode") as pool:
            try:
                while queue or in_flight:
                    self._check()
                    while queue and len(in_flight) < ahead:
                        in_flight.append(pool.submit(self._decode, queue.popleft()))
                    result = in_flight.popleft().result()
                    pending.append(result)
                    if result.pixels is not None:
                        pending_images += len(result.pixels)
                    if pending_images >= batch_size or not (queue or in_flight):
                        done += self._flush(pending, report)
                        pending, pending_images = [], 0
                        self._report("index", done, total, started, str(result.job.file.path), report.failed,
                                     run_started)
                        if time.perf_counter() - last_save > self.options.save_every_s:
                            self.library.save_vectors()
                            last_save = time.perf_counter()
            except IndexCancelled:
                for future in in_flight:
                    future.cancel()
                # Decoded work is cheap to keep: write it, then stop.
                pending += [f.result() for f in in_flight if f.done() and not f.cancelled()]
                self._flush([r for r in pending if r.pixels is not None or r.error or r.touched], report)
                raise

    def _flush(self, results: list[_Result], report: IndexReport) -> int:
        """Encode the batch, then write every result in one transaction."""
        results = [r for r in results if r.pixels is not None or r.error is not None or r.touched]
        if not results:
            return 0
        self._encode_batch([r for r in results if r.pixels is not None])
        self._store_batch(results, report)
        return len(results)

    def _encode_batch(self, results: list[_Result]) -> None:
        """Embed the results' pixels (a video: its frames and their renormalised mean) and captions."""
        if not results:
            return
        import torch

        vectors = self._encode(torch.cat([r.pixels for r in results]))
        offset = 0
        for r in results:
            n = len(r.pixels)
            frames = vectors[offset:offset + n]
            offset += n
            if r.job.file.kind == "video":
                r.segment_vectors = frames
                mean = frames.mean(axis=0)
                r.vector = mean / max(float(np.linalg.norm(mean)), 1e-12)
            else:
                r.vector = frames[0]
            r.pixels = None
        captioned = [r for r in results if r.caption]
        if captioned:
            for r, vector in zip(captioned, self.encoder.encode_texts([r.caption for r in captioned])):
                r.caption_vector = vector

    def _store_batch(self, results: list[_Result], report: IndexReport) -> None:
        """Write rows, embeddings, segments and captions in one transaction, then mirror them in the
        vector indexes."""
        lib = self.library
        model_id = self.encoder.model_id
        folder_ids = {str(p): fid for fid, p in lib.db.folders()}
        now = time.time()
        added = StoredVectors()
        remove = {"media": [], "segment": [], "text": []}
        with lib.db.transaction() as conn:
            gen = lib.db.bump_generation(conn)
            for r in results:
                file = r.job.file
                if r.touched:
                    update_media(conn, r.job.row_id, {"size": file.size, "mtime_ns": file.mtime_ns})
                    report.touched += 1
                    continue
                ok = r.error is None
                row_id = upsert_media(conn, self._row_values(r, folder_ids.get(str(file.root)), now))
                # Changed content makes every model's vectors of this row stale; an unchanged file
                # re-read for another model keeps the old model's vectors (they answer until the switch).
                changed = not ok or r.hash != r.job.old_hash
                old_segments, old_texts = delete_media_data(conn, [row_id], None if changed else model_id)
                remove["segment"] += old_segments
                remove["text"] += old_texts
                if not ok:
                    remove["media"].append(row_id)
                    report.failed += 1
                    report.errors.append((str(file.path), r.error))
                    continue
                if r.job.row_id is None:
                    report.added += 1
                else:
                    report.updated += 1
                self._store_read(conn, r, row_id, gen, added, report, now)
        lib.apply(gen, model_id, add=added.stacked(), remove=remove)

    def _store_read(self, conn, r: _Result, row_id: int, gen: int, added: StoredVectors, report: IndexReport,
                    now: float) -> None:
        """A read file's vectors (its frames' spans for a video), caption and first-pass signals."""
        segments = []
        if r.segment_vectors is not None:
            times = r.decoded.times
            ends = times[1:] + [r.decoded.duration or times[-1]]
            segments = [(start, max(end, start), vector) for start, end, vector in zip(times, ends, r.segment_vectors)]
        caption = (r.caption, r.caption_vector) if r.caption_vector is not None else None
        store_vectors(conn, added, row_id, self.encoder.model_id, gen, r.vector, segments, caption)
        for signal, output, error in r.signals:
            store_result(conn, row_id, signal, output, error, now)
            if error is not None:
                self._signal_failed(report, signal.name, str(r.job.file.path), error)

    def _row_values(self, r: _Result, folder_id: int | None, now: float) -> dict:
        """The media row of a read (or failed) file."""
        file, decoded, ok = r.job.file, r.decoded, r.error is None
        return {
            "path": to_db(file.path), "folder_id": folder_id,
            "name": searchable_text(display_name(file.path)),
            "folder_names": searchable_text(folder_names(file.path, file.root)),
            "caption": r.caption, "kind": file.kind, "size": file.size, "mtime_ns": file.mtime_ns,
            "hash": r.hash, "width": decoded.width if decoded else None,
            "height": decoded.height if decoded else None,
            "duration": decoded.duration if decoded else None,
            "captured_at": decoded.captured_at if decoded else None,
            "status": "ok" if ok else "error", "error": safe_text(r.error) if r.error else None,
            "model_id": self.encoder.model_id if ok else None, "indexed_at": now,
        }

    def _encode(self, pixels: torch.Tensor) -> np.ndarray:
        batch = self.options.batch_size or self.encoder.default_batch_size()
        return np.concatenate([self.encoder.encode_images(pixels[i:i + batch])
                               for i in range(0, len(pixels), batch)])

    # -- signals --------------------------------------------------------------------------
    @staticmethod
    def _signal_failed(report: IndexReport, signal: str, path: str, error: str) -> None:
        report.signals_failed += 1
        if len(report.signal_errors) < 50:
            report.signal_errors.append((signal, path, error))

    def _second_pass(self, report: IndexReport, run_started: float) -> None:
        """The signals every readable photo lacks (second-pass ones, and first-pass ones for rows indexed
        before they existed), after all embeddings: the library is searchable while this runs."""
        started = time.perf_counter()
        if self._preparing is not None:
            self._preparing.join()

        def progress(done: int, total: int, path: str, failed: int) -> None:
            self._report("signals", done, total, started, path, failed, run_started)

        outcome = SignalRunner(self.library, self._signals, self._check, progress).run_in_background_thread()
        report.signals_done += outcome.done
        report.signals_failed += outcome.failed
        report.signal_errors += outcome.errors[:max(0, 50 - len(report.signal_errors))]

    # -- vocabulary and model switch ---------------------------------------------------------
    def _embed_vocabulary(self, run_started: float) -> None:
        """Store the shipped vocabulary and embed what this model has not embedded yet."""
        lib = self.library
        model_id = self.encoder.model_id
        conn = lib.db.conn
        vocabulary = load_vocabulary()
        if vocabulary_size(conn) != len(vocabulary):
            with lib.db.transaction() as writer:
                add_vocabulary(writer, vocabulary)
        todo = vocabulary_to_embed(conn, model_id)
        started = time.perf_counter()
        for start in range(0, len(todo), 256):
            self._check()
            chunk = todo[start:start + 256]
            vectors = self.encoder.encode_texts([t for _, t in chunk])
            with lib.db.transaction() as writer:
                gen = lib.db.bump_generation(writer)
                store_text_vectors(writer, [tid for tid, _ in chunk], vectors, model_id, gen)
            lib.apply(gen, model_id, add={"text": ([tid for tid, _ in chunk], vectors)})
            self._report("texts", start + len(chunk), len(todo), started, None, 0, run_started)

    def _switch_model(self, model_id: str) -> None:
        """Make this run's model the library's once every readable file has its embedding."""
        lib = self.library
        if unembedded_count(lib.db.conn, model_id):
            return
        old = lib.model_id
        lib.set_model(model_id, self.encoder.source)
        if self.on_model_switch:
            self.on_model_switch(model_id)
        if old:
            lib.drop_model(old)
