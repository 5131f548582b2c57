"""Running the signals (``app.library.signals``) over a library's photos.

First-pass signals (place, EXIF: a header read) run inside the indexer's decode workers for each file it
reads. ``SignalRunner`` is the second pass: after the run's embeddings are stored, it gives every readable
photo the results it lacks (work = photos without a row for the signal at its current version). Each signal
works through the files on a lane of its own, a few files in flight (``FILES_IN_FLIGHT``); each file's results
are stored in file order, in one transaction, so a cancel or kill -9 loses at most the files in flight and
the next run resumes. It also catches up first-pass signals for rows indexed before they
existed. Searching is never blocked: each write is a short WAL transaction.

A signal whose package is missing is recorded once (the settings row ``signal_unavailable.NAME`` holds
the install hint) and skipped; a file a signal cannot read gets an ``error`` result and the run goes on.

A second-pass signal that declares ``reads_video`` also reads the readable videos: on the frames the index
sampled when it embedded them (their stored segment starts, not decided again), decoded by
``cots_core.media.video_frames_at`` (its size limits), one video per transaction like a photo.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from app.library import signals as signal_registry
from app.library.face_grouping import store_faces
from app.library.library import Library
from app.library.signals import Signal, SignalError, SignalOutput
from app.library.storage.signals import signal_counts, signal_work, signal_work_count, store_signal_result
from app.library.storage.vectors import segment_starts
from cots_core.media import MediaError, read_image, video_frames_at

log = logging.getLogger(__name__)

SIGNALS_OFF_SETTING = "signals_off"  # comma-separated names of signals the person turned off
UNAVAILABLE_SETTING = "signal_unavailable."
# The longest side second-pass signals get the photo at when none says what it needs (a ``decode_side``
# attribute: OCR 1280, faces 1280): decoded once per photo at the largest of those.
SECOND_PASS_IMAGE_SIZE = 1280
# How much nicer (Linux niceness) the second pass's thread is than the thread that started it, so that
# searches and the rest of the desktop come first.
SECOND_PASS_NICENESS = 10
# Photos decoded or read by the signals at once (a video counts for all but one): each signal works through them
# at its own pace, and memory stays a few photos at 1280 px.
FILES_IN_FLIGHT = 3


def lower_thread_priority(step: int = SECOND_PASS_NICENESS) -> None:
    """Make the calling thread (only it, and threads it starts later) nicer by ``step``; Linux only
    (elsewhere a no-op). It cannot be undone without privileges: call it on a thread of its own."""
    if sys.platform != "linux":
        return
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + step))
    except OSError as error:  # a sandbox may forbid it; the pass still runs
        log.debug("could not lower the second pass's priority: %s", error)


def prepare_in_background(signals: Iterable[Signal]) -> threading.Thread | None:
    """Load the second-pass signals' models (their ``prepare()``) on a thread of its own at the second pass's
    lower priority, started now; join it before the second pass. None when no signal has anything to load.
    The indexer starts it beside the embedding pass, whose decode workers leave a core idle part of the time:
    the ~1 s of model loading then no longer comes first in the second pass (an eighth of it on 25 large photos,
    bench/RESULTS.md "The second pass on 20+ MP photos")."""
    prepares = [s.prepare for s in signals if s.second_pass and callable(getattr(s, "prepare", None))]
    if not prepares:
        return None

    def work() -> None:
        lower_thread_priority()
        for prepare in prepares:
            try:
                prepare()
            except Exception:  # noqa: BLE001 - extract() meets the same problem and records it per file
                log.debug("preparing a signal failed", exc_info=True)

    thread = threading.Thread(target=work, name="cots-signals-prepare", daemon=True)
    thread.start()
    return thread


def disabled_signals(library: Library) -> set[str]:
    """Names of the signals turned off for this library (``cots index --no-ocr``, the GUI's checkboxes)."""
    value = library.db.get_setting(SIGNALS_OFF_SETTING, "") or ""
    return {name for name in value.split(",") if name}


def set_signal_enabled(library: Library, name: str, enabled: bool) -> None:
    """Turn one signal on or off for this library (kept in the library: later runs follow it)."""
    off = disabled_signals(library)
    off = off - {name} if enabled else off | {name}
    library.db.set_setting(SIGNALS_OFF_SETTING, ",".join(sorted(off)) or None)


def second_pass_side(signals: Iterable[Signal]) -> int:
    """The longest side the photo is decoded at for these signals: the largest ``decode_side`` they ask for."""
    return max((int(getattr(s, "decode_side", SECOND_PASS_IMAGE_SIZE)) for s in signals if s.second_pass),
               default=SECOND_PASS_IMAGE_SIZE)


def decode_for_second_pass(path: str, long_side: int = SECOND_PASS_IMAGE_SIZE):
    """The photo in RGB, EXIF orientation applied, its longest side brought down to ``long_side`` (kept when
    smaller). A JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale still at least that long (DCT scaling:
    a 24 MP photo costs a 1.5 MP decode), where asking for a short side of 1024 had decoded most phone photos
    in full. MediaError when it cannot be read."""
    from cots_core.media import image_size

    try:  # the header only: to turn the long side into read_image's size
        width, height = image_size(path)
    except MediaError:  # read_image below says why in its own words
        width = height = 0
    target = long_side // 2  # read_image keeps at least 2 x target on the short side
    if width > 0 and height > 0:
        target = max(1, -(-long_side * min(width, height) // (2 * max(width, height))))
    return read_image(path, target_size=target).frames[0]


def signal_kinds(signal: Signal) -> tuple[str, ...]:
    """The kinds of media a signal reads, as it declares: photos, and videos for a second-pass signal that
    declares ``reads_video``."""
    reads_video = signal.second_pass and signal_registry.declaration(type(signal)).reads_video
    return ("image", "video") if reads_video else ("image",)


def sampled_times(library: Library, media_id: int) -> list[float]:
    """The seconds a video was sampled at when the index embedded it (its stored segment starts; the first
    frame when none are stored). Read on the thread that owns the library's connection."""
    return segment_starts(library.db.conn, media_id, library.model_id) or [0.0]


def decode_video_frames(library: Library, media_id: int, path: str, long_side: int = SECOND_PASS_IMAGE_SIZE):
    """[(second, RGB frame)] of a video at the times the index sampled it (``sampled_times``), each brought
    down to ``long_side``. Frames that do not decode are left out; MediaError when none does."""
    return frames_at(path, sampled_times(library, media_id), long_side)


def frames_at(path: str, times: list[float], long_side: int = SECOND_PASS_IMAGE_SIZE):
    """``decode_video_frames`` once the times are known (no SQLite: safe on any thread)."""
    frames = video_frames_at(path, times, long_side=long_side)
    if not frames:
        raise MediaError("none of its sampled frames decodes")
    return frames


def extract_safely(signal: Signal, path: str, image, frames: list | None = None) -> tuple[SignalOutput | None, str | None]:
    """(output, None), or (None, the error) when the signal cannot read the file: never raises. With
    ``frames`` (a video's [(second, frame)]), the signal's ``extract_frames`` reads them."""
    try:
        if frames is not None:
            return signal.extract_frames(path, frames), None
        return signal.extract(path, image), None
    except SignalError as error:
        return None, str(error) or type(error).__name__
    except Exception as error:  # noqa: BLE001 - one file a signal cannot read never stops a run
        log.debug("signal %s failed on %s", signal.name, path, exc_info=True)
        return None, f"{type(error).__name__}: {error}"


def store_result(conn: sqlite3.Connection, media_id: int, signal: Signal, output: SignalOutput | None,
                 error: str | None, now: float) -> None:
    """Store one (media, signal) result, in the caller's transaction, with what the signal's declaration
    says it feeds: the capture date (``date_fact``), and people (``groups_faces``: the photo's faces are
    replaced and grouped; none when the signal failed). A video's boxes (``at_s``: on one of its frames) feed
    the people only: the detail pane draws boxes on the item's preview, which is none of those frames."""
    declared = signal_registry.declaration(type(signal))
    on_preview = output
    if output is not None and any(getattr(b, "at_s", None) is not None for b in output.boxes):
        on_preview = replace(output, boxes=[b for b in output.boxes if getattr(b, "at_s", None) is None])
    store_signal_result(conn, media_id, signal.name, signal.version, on_preview, error, now, declared.date_fact)
    if declared.groups_faces:
        boxes = output.boxes if output is not None and error is None else []
        store_faces(conn, media_id, boxes, getattr(output, "vectors", None) or [None] * len(boxes), now=now)


def active_signals(library: Library, off: Iterable[str] | None = None,
                   signals: list[Signal] | None = None) -> list[Signal]:
    """The signals that will run: registered, not turned off (``off``; None: the library's setting), and
    available. Unavailability is recorded once per signal in the library's settings (cleared when the
    package comes back)."""
    off = disabled_signals(library) if off is None else set(off)
    out = []
    for signal in signal_registry.all_signals() if signals is None else signals:
        if signal.name in off:
            continue
        try:
            reason = signal.unavailable()
        except Exception as error:  # noqa: BLE001 - the contract says it must not raise; be sure
            reason = f"{signal.name} cannot run: {error}"
        key = UNAVAILABLE_SETTING + signal.name
        if reason:
            if library.db.get_setting(key) != reason:
                library.db.set_setting(key, reason)
                log.info("signal %s unavailable: %s", signal.name, reason)
            continue
        if library.db.get_setting(key) is not None:
            library.db.set_setting(key, None)
        out.append(signal)
    return out


def signal_summary(library: Library) -> dict[str, dict]:
    """Per registered signal: ok / error rows, photos waiting, and why it is off or unavailable."""
    conn = library.db.conn
    counts = signal_counts(conn)
    off = disabled_signals(library)
    summary = {}
    for signal in signal_registry.all_signals():
        summary[signal.name] = {
            "ok": counts.get(signal.name, {}).get("ok", 0), "error": counts.get(signal.name, {}).get("error", 0),
            "pending": signal_work_count(conn, signal.name, signal.version, signal_kinds(signal)),
            "second_pass": signal.second_pass,
            "off": signal.name in off, "unavailable": library.db.get_setting(UNAVAILABLE_SETTING + signal.name)}
    return summary


def second_pass_waiting(summary: dict[str, dict]) -> int:
    """Photos that still wait for the second pass (``signal_summary``'s counts): the most any second-pass
    signal that is on and available still lacks (they run together, photo by photo)."""
    return max((s["pending"] for s in summary.values() if s["second_pass"] and not s["off"] and not s["unavailable"]),
               default=0)


@dataclass
class SignalReport:
    done: int = 0  # files given new results
    failed: int = 0  # (file, signal) results that are errors
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (signal, path, error), at most 50


class SignalRunner:
    """The second pass over a library (see the module docstring). ``check()`` is called before each signal
    reads a file (on the signal's lane): it waits while paused and raises to cancel (the indexer's
    ``_check``); ``progress(done, total, path, failed)`` after each file."""

    def __init__(self, library: Library, signals: list[Signal], check: Callable[[], None] = lambda: None,
                 progress: Callable[[int, int, str, int], None] | None = None):
        self.library = library
        self.signals = signals
        self.check = check
        self.progress = progress
        self._reader: ThreadPoolExecutor | None = None  # decodes the files ahead (see _decode_ahead)
        self._lanes: dict[str, ThreadPoolExecutor] = {}  # one worker per signal (see _lane)

    def pending(self) -> int:
        conn = self.library.db.conn
        return max((signal_work_count(conn, s.name, s.version, signal_kinds(s)) for s in self.signals), default=0)

    def _next_work(self, batch: int = 200) -> dict[int, tuple[str, str, list[Signal]]]:
        """media id -> (path, kind, the signals it lacks), for the lowest ids with work."""
        conn = self.library.db.conn
        work: dict[int, tuple[str, str, list[Signal]]] = {}
        for signal in self.signals:
            for media_id, path, kind in signal_work(conn, signal.name, signal.version, batch, signal_kinds(signal)):
                work.setdefault(media_id, (path, kind, []))[2].append(signal)
        return dict(sorted(work.items())[:batch])

    def run_in_background_thread(self) -> SignalReport:
        """``run`` on a thread of its own at a lower priority (``lower_thread_priority``), waited for;
        what it raises (a cancel) is raised here."""
        outcome: dict = {}

        def work() -> None:
            lower_thread_priority()
            try:
                outcome["report"] = self.run()
            except BaseException as error:  # noqa: BLE001 - handed back to the caller's thread
                outcome["error"] = error

        thread = threading.Thread(target=work, name="cots-signals", daemon=True)
        thread.start()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["report"]

    def run(self) -> SignalReport:
        try:
            return self._run()
        finally:  # the reader first: a lane waiting on a decode it cancels then stops at once
            for pool in [self._reader, *self._lanes.values()]:
                if pool is not None:
                    pool.shutdown(wait=True, cancel_futures=True)
            self._reader, self._lanes = None, {}

    def _run(self) -> SignalReport:
        report = SignalReport()
        if not self.signals:
            return report
        total = self.pending()
        while True:
            work = list(self._next_work().items())
            if not work:
                return report
            in_flight: deque[tuple[int, str, str, list[Future]]] = deque()  # (media id, path, kind, futures)
            for media_id, item in work:  # a cancel surfaces from the first file whose signals had not begun
                while in_flight and self._window_full(in_flight, item[1]):
                    self._finish(in_flight.popleft(), report, total)
                in_flight.append((media_id, item[0], item[1], self._submit(media_id, item)))
            while in_flight:
                self._finish(in_flight.popleft(), report, total)

    @staticmethod
    def _window_full(in_flight: deque, kind: str) -> bool:
        """Whether a file of ``kind`` must wait for the oldest in flight: at most ``FILES_IN_FLIGHT`` photos,
        and a video (its sampled frames, up to 32 at 1280 px) with one other file at most."""
        slots = sum(FILES_IN_FLIGHT - 1 if k == "video" else 1 for _, _, k, _ in in_flight)
        return slots + (FILES_IN_FLIGHT - 1 if kind == "video" else 1) > FILES_IN_FLIGHT

    def _submit(self, media_id: int, item: tuple[str, str, list[Signal]]) -> list[Future]:
        """Start one file: its decode on the reader thread, then each signal on its own lane, in file order.
        Per photo, OCR and faces rarely take the same time; with a barrier per photo the faster one's core sat
        idle (38 % of the pass's wall time with one stage running on the large set of bench/RESULTS.md "The
        second pass on 20+ MP photos"). Lanes let OCR work on one photo while faces finish another."""
        path, kind, signals = item
        decoded = self._decode_ahead(media_id, item)
        return [self._lane(signal).submit(self._extract_one, signal, path, decoded) for signal in signals]

    def _finish(self, file: tuple[int, str, str, list[Future]], report: SignalReport, total: int) -> None:
        """Wait for one file's signals (an ``in_flight`` entry) and store their results (in file order, one
        transaction per file)."""
        media_id, path, _, futures = file
        self._store(media_id, path, [future.result() for future in futures], report)
        report.done += 1
        if self.progress:
            self.progress(report.done, max(total, report.done), path, report.failed)

    def _decode_ahead(self, media_id: int, item: tuple[str, str, list[Signal]]) -> Future:
        """The file decoded for its signals (``_decode``) on a thread of its own, ahead of the signals, so that
        decoding takes a core OCR or faces leave idle (30 % of a photo's second pass on the large set, half on its
        15+ MP progressive JPEGs)."""
        path, kind, signals = item
        times = sampled_times(self.library, media_id) if kind == "video" else None  # SQLite stays on this thread
        if self._reader is None:  # made here, so that it inherits this thread's lower priority
            self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cots-signal-read")
        return self._reader.submit(self._decode, path, kind, signals, times)

    def _lane(self, signal: Signal) -> ThreadPoolExecutor:
        """The signal's own worker thread (made on this thread, so that it inherits the lower priority): OCR's
        onnxruntime and dlib release the GIL and are single-threaded, so with two cores the signals run side by
        side; with one core, one thread runs them all."""
        key = signal.name if (os.cpu_count() or 1) >= 2 else ""
        if key not in self._lanes:
            self._lanes[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"cots-signal-{key or 'all'}")
        return self._lanes[key]

    @staticmethod
    def _decode(path: str, kind: str, signals: list[Signal], times: list[float] | None) -> tuple:
        """(image, frames, decode error) for one file: a photo at the side its signals ask for, a video's
        sampled frames (only the signals that read videos have work in one), nothing when no second-pass
        signal needs pixels."""
        try:
            if kind == "video":
                return None, frames_at(path, times or [0.0], second_pass_side(signals)), None
            if any(s.second_pass for s in signals):
                return decode_for_second_pass(path, second_pass_side(signals)), None, None
        except MediaError as error:
            return None, None, f"the {'video' if kind == 'video' else 'photo'} cannot be read: {error}"
        return None, None, None

    def _extract_one(self, signal: Signal, path: str, decoded: Future) -> tuple:
        """(signal, output, error) for one signal on one file, once the file is decoded. ``check()`` first: the
        lanes hold while the run is paused and read nothing more once it is cancelled (what it raises reaches
        the runner's thread through the future)."""
        self.check()
        image, frames, decode_error = decoded.result()
        if decode_error is not None and signal.second_pass:
            return signal, None, decode_error
        return (signal, *extract_safely(signal, path, image if signal.second_pass else None, frames))

    def _store(self, media_id: int, path: str, results: list[tuple], report: SignalReport) -> None:
        now = time.time()
        try:
            with self.library.db.transaction() as conn:
                for signal, output, error in results:
                    store_result(conn, media_id, signal, output, error, now)
        except sqlite3.IntegrityError:
            return  # the row went meanwhile (forgotten from another window): nothing to keep
        for signal, _, error in results:
            if error is not None:
                report.failed += 1
                if len(report.errors) < 50:
                    report.errors.append((signal.name, path, error))
