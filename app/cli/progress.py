"""Indexing in the terminal: the progress bar (or, without a terminal, plain lines for the long second
pass), Ctrl+C that cancels cleanly, and the report at the end. Used by ``cots index`` and ``cots demo``."""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from app.library.pathtext import display_text
from app.library.timefmt import format_time

if TYPE_CHECKING:
    from app.library.indexer import IndexReport


class ProgressBar:
    """tqdm on stderr, fed by the indexer's progress callback."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty() or enabled == "force"
        self.bar = None
        self.phase = None
        # Without a terminal (a log, a pipe) the long second pass still says where it is, in plain lines.
        self.second_pass_lines = SecondPassLines() if enabled and not self.enabled else None

    def __call__(self, progress) -> None:
        if self.second_pass_lines is not None:
            self.second_pass_lines(progress)
        if not self.enabled:
            return
        from tqdm import tqdm

        from app.library.signals import pass_name

        if progress.phase != self.phase:
            if self.bar is not None:
                self.bar.close()
            self.phase = progress.phase
            label = {"scan": "scanning", "prepare": "preparing the model (once)", "index": "indexing",
                     "texts": "vocabulary", "signals": f"second pass: {pass_name()}", "done": None}[progress.phase]
            unit = {"texts": "text", "signals": "photo"}.get(progress.phase, "file")
            self.bar = tqdm(total=progress.total or None, desc=label, unit=unit, file=sys.stderr,
                            leave=False) if label else None
        if self.bar is not None:
            if progress.total:
                self.bar.total = progress.total
            self.bar.n = progress.done
            if progress.phase == "signals":  # the indexer's own estimate, from this phase's pace
                self.bar.set_postfix_str(second_pass_left(progress), refresh=False)
            elif progress.current:
                self.bar.set_postfix_str(display_text(Path(progress.current).name)[-40:], refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def second_pass_left(progress) -> str:
    """"about 1:05 left" for a second-pass progress report ("" before the first photo gives a pace)."""
    if progress.done >= progress.total:
        return "done"
    return f"about {format_time(progress.eta_s)} left" if progress.eta_s is not None else ""


class SecondPassLines:
    """The second pass's progress as plain lines on stderr (no terminal): after the first photo, then at most
    every ``every_s`` seconds, and when it ends: "second pass (text and faces): 120/5000 photos, about 1:02:10
    left" (the pass named as its signals declare it)."""

    def __init__(self, every_s: float = 30.0):
        self.every_s = every_s
        self.last_at: float | None = None

    def __call__(self, progress) -> None:
        if progress.phase != "signals" or progress.done < 1:
            return
        now = time.monotonic()
        if self.last_at is not None and now - self.last_at < self.every_s and progress.done < progress.total:
            return
        self.last_at = now
        from app.library.signals import pass_name

        left = second_pass_left(progress)
        print(f"second pass ({pass_name()}): {progress.done}/{progress.total} photos" + (f", {left}" if left else ""),
              file=sys.stderr, flush=True)


def run_index(library, encoder, options=None, show_progress: bool = True):
    """Run the indexer in a worker thread so that Ctrl+C cancels cleanly (state kept, resumable)."""
    from app.library.indexer import Indexer

    bar = ProgressBar(show_progress)
    indexer = Indexer(library, encoder, options, progress=bar)
    outcome: dict = {}

    def work():
        try:
            outcome["report"] = indexer.run()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            outcome["error"] = error

    thread = threading.Thread(target=work, name="cots-indexer")
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        print("\ncancelling (what is done is kept; run the command again to continue) ...", file=sys.stderr)
        indexer.cancel()
        thread.join()
    finally:
        bar.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["report"]


def print_report(report: IndexReport) -> None:
    parts = [f"{report.added} new", f"{report.updated} updated", f"{report.moved} moved",
             f"{report.removed} removed", f"{report.unchanged + report.touched} unchanged",
             f"{report.failed} failed"]
    state = "cancelled" if report.cancelled else "done"
    print(f"{state} in {report.seconds:.1f}s: " + ", ".join(parts))
    for path, error in report.errors[:20]:
        print(f"  failed: {display_text(path)}: {display_text(error)}")
    if len(report.errors) > 20:
        print(f"  ... and {len(report.errors) - 20} more (see `cots status`)")
    if report.signals_done or report.signals_failed:
        print(f"signals: {report.signals_done} photos read in the second pass, {report.signals_failed} could not be "
              "read by a signal (see `cots status`)")
    for signal, path, error in report.signal_errors[:10]:
        print(f"  {signal} failed: {display_text(path)}: {display_text(error)}")
