"""Library subcommands: index, search, similar, describe, places, status, forget, repair, demo, models (and
the gui hook).

Registered by ``app.cli.register_library_commands``. Handlers print; the engine in ``app.library``
never does. Errors the person can fix are ``LibraryError`` (a ``CotsError``): exit status 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from app.library.pathtext import display_text
from app.library.timefmt import format_time

if TYPE_CHECKING:
    from app.library.indexer import IndexReport

log = logging.getLogger(__name__)

DEMO_QUERIES = [
    "a cat",  # a photo and a moment in the video
    "a cup of espresso",
    "a rocket launch",
    "a woman in military uniform",
    "a temple",  # meaning, helped by a sidecar caption
    "China 2011",  # a folder name: the full-text half of hybrid search
]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the library's commands (and ``cots gui`` when the desktop app is installed)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", help="library database (default: the library in your user data folder)")
    common.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1 or mps")
    common.add_argument("--model", default=None,
                        help="model name, checkpoint folder or Hugging Face hub id ORG/NAME, downloaded once "
                             "(default: the library's own, else cots-lite; `cots models` lists them)")

    _add_index_command(subparsers, common)
    _add_search_commands(subparsers, common)
    _add_maintenance_commands(subparsers, common)
    from app import models_cli

    models_cli.register(subparsers)
    register_gui(subparsers)


def _add_index_command(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("index", parents=[common], help="add folders to the library and index them",
                              description="Add folders (if given) and bring the library up to date: new and "
                                          "changed files are embedded, moved files keep their embedding, "
                                          "deleted files are removed.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="folders to add (none: re-index the library's folders)")
    p.add_argument("--batch-size", type=positive_int, default=None)
    p.add_argument("--workers", type=positive_int, default=None,
                   help="decoding threads (default: one per core, at most 8 when the model runs on the CPU)")
    p.add_argument("--video-interval", type=positive_float, default=2.0,
                   help="seconds between sampled video frames")
    p.add_argument("--max-frames", type=positive_int, default=32, help="frames sampled per video at most")
    p.add_argument("--retry-failed", action="store_true", help="retry files that failed, even if unchanged")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from app.library.signals import toggles

    for name, toggle in toggles().items():  # --ocr/--no-ocr, --faces/--no-faces: as the signals declare them
        p.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None,
                       help=f"read {toggle.what} after the embeddings (a second, slower pass); the choice is kept "
                            "in the library for later runs (default: on)")
    p.add_argument("--no-signals", action="store_true",
                   help="this run reads no signals at all (places, EXIF, text, faces); the next run catches up")
    p.set_defaults(handler=cmd_index)


def _add_search_commands(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("search", parents=[common], help="search the library with words")
    p.add_argument("query")
    p.add_argument("-k", type=positive_int, default=20, help="results at most (default 20)")
    p.add_argument("--json", action="store_true", help="print a JSON list, best first")
    p.add_argument("--kind", type=media_kind_name, help="only this kind of media: image or video")
    p.add_argument("--folder", type=path_text, help="only under this folder")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="YYYY, YYYY-MM or YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="YYYY, YYYY-MM or YYYY-MM-DD")
    p.add_argument("--all", action="store_true", help="also show weak matches (no relevance cut-off)")
    p.add_argument("--min-relevance", type=_finite_float, default=None, help="cut-off on the calibrated relevance")
    p.add_argument("--no-names", action="store_true",
                   help="meaning only: ignore file and folder names, captions, places and text in photos")
    add_signal_filter_flags(p)
    p.add_argument("--person", action="append", default=[], metavar="NAME", type=typed_text,
                   help="only photos of this named person (`cots people name`); repeat for several together")
    p.set_defaults(handler=cmd_search)

    p = subparsers.add_parser("places", parents=[common],
                              help="the places your photos were taken, their cameras, ...: each filter's choices",
                              description="The values the signals' filters of `cots search` can take, with photo "
                                          "counts, most photos first: the cities and countries read from the "
                                          "photos' GPS positions (offline), the cameras, and so on.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_places)

    p = subparsers.add_parser("similar", parents=[common], help="find media that look like an image")
    p.add_argument("image")
    p.add_argument("-k", type=positive_int, default=10, help="results at most (default 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_similar)

    p = subparsers.add_parser("describe", parents=[common],
                              help="best-matching words for an image (captions and the shipped vocabulary)")
    p.add_argument("image")
    p.add_argument("-k", type=positive_int, default=10, help="texts at most (default 10)")
    p.add_argument("--at", type=non_negative_float, default=None, metavar="SECONDS",
                   help="for an indexed video: describe the moment at SECONDS, not the whole video")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_describe)


def _add_maintenance_commands(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("status", parents=[common], help="counts, failures, model and index health")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)

    p = subparsers.add_parser("forget", parents=[common], help="remove a folder or file from the library",
                              description="Remove a watched folder, or a folder or file inside one, from the "
                                          "library (the files stay on disk). It says what it will remove and "
                                          "asks first; `cots index FOLDER` brings forgotten files back.")
    p.add_argument("path")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask (for scripts)")
    p.set_defaults(handler=cmd_forget)

    p = subparsers.add_parser("repair", parents=[common], help="check the library database and salvage a damaged one",
                              description="Run SQLite's integrity check on the library. A damaged file is kept "
                                          "aside as NAME.damaged-<time>, what can be read is copied into a fresh "
                                          "library, and the next `cots index` re-embeds what was lost. The "
                                          "vector indexes are rebuilt either way.")
    p.set_defaults(handler=cmd_repair)

    p = subparsers.add_parser("demo", parents=[common],
                              help="index the shipped sample library and run a few searches")
    p.set_defaults(handler=cmd_demo)


def register_gui(subparsers: argparse._SubParsersAction) -> None:
    """Hook for the desktop app: ``app/gui/cli.py`` defines ``register(subparsers)`` (adds ``cots gui``)."""
    try:
        from app.gui import cli as gui_cli
    except ImportError:
        return
    gui_cli.register(subparsers)


def add_signal_filter_flags(p: argparse.ArgumentParser) -> None:
    """One flag per filter the signals declare (``--place``, ``--camera``, ``--with-people`` with its opposite
    ``--without-people``); the values land in ``args.signal_filters`` (filter name -> value or None)."""
    from app.library.signals import fact_filters
    from app.library.signals.base import AT_LEAST_ONE

    for declared in fact_filters():
        dest = f"filter.{declared.name}"
        if declared.match == AT_LEAST_ONE:
            group = p.add_mutually_exclusive_group()
            group.add_argument(declared.flag, dest=dest, action="store_const", const=True, default=None,
                               help=declared.help)
            if declared.negated:
                group.add_argument("--" + declared.negated.replace("_", "-"), dest=dest, action="store_const",
                                   const=False, help=declared.negated_help)
        else:
            p.add_argument(declared.flag, dest=dest, metavar=declared.name.upper(), type=typed_text,
                           help=declared.help)


def signal_filter_values(args) -> dict[str, object]:
    """The signal filters given on the command line (``add_signal_filter_flags``): name -> value."""
    prefix = "filter."
    return {name[len(prefix):]: value for name, value in vars(args).items()
            if name.startswith(prefix) and value is not None}


# -- argument types -----------------------------------------------------------------------------


MAX_WHOLE_NUMBER = 2**63 - 1  # SQLite's largest INTEGER


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more (``-k 0`` or ``-k -1`` is a mistake, not a request)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    if value > MAX_WHOLE_NUMBER:  # ids and counts go into SQLite (and numpy): a larger one cannot be stored
        raise argparse.ArgumentTypeError(f"{text!r} is too large (at most {MAX_WHOLE_NUMBER})")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value:g}")
    return value


def non_negative_float(text: str) -> float:
    value = _finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value:g}")
    return value


def typed_text(text: str) -> str:
    """argparse type of a value matched against text the library stores (``--place``, ``--camera``,
    ``--person``, a person's name): bytes a terminal sent that are not UTF-8 (argv holds them as lone
    surrogates, which SQLite cannot take) read as Latin-1, as file names do (``pathtext.searchable_text``);
    any other lone surrogate becomes U+FFFD."""
    from app.library.pathtext import searchable_text

    try:
        return searchable_text(text)
    except UnicodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def path_text(text: str) -> str:
    """argparse type of a path: one this system can name (bytes that are not UTF-8 are fine; a lone surrogate
    that stands for no byte is not)."""
    try:
        os.fsencode(text)
    except UnicodeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a path: it holds characters no file name can") from None
    return text


def media_kind_name(text: str) -> str:
    """argparse type: a kind of media the library reads (``cots_core.media.MEDIA_KINDS``, imported only here
    so that a plain start does not load Pillow)."""
    from cots_core.media import MEDIA_KINDS

    if text not in MEDIA_KINDS:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(MEDIA_KINDS)})")
    return text


# -- helpers ------------------------------------------------------------------------------------


def open_library(args, create: bool = False):
    """The library of ``--db`` (or the default one); only ``create=True`` commands may start a new one."""
    from app.library import Library

    return Library(args.db, create=create)


def load_encoder(args, library, text_first: bool = False):
    from app.library.encoder import DEFAULT_MODEL, Encoder
    from app.models_cli import fetch_if_hub_id

    source = args.model or library.model_source or DEFAULT_MODEL
    fetch_if_hub_id(args.model)  # a hub id named on the command line is downloaded once; the library keeps the id
    print(f"loading model {display_text(source)} ...", file=sys.stderr, flush=True) if not getattr(args, "json", False) else None
    return Encoder.load(source, device=args.device, text_first=text_first)


def _search_service(args, library):
    from app.library.errors import LibraryError
    from app.library.search import SearchService

    if library.model_id is None:
        raise LibraryError(f"the library {library.path} is empty: run `cots index FOLDER` first")
    # searches need the image tower only for a query image outside the library: load it on demand
    return SearchService(library, load_encoder(args, library, text_first=True))


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


def print_hits(hits, query: str | None = None) -> None:
    from app.library.signals import hit_fact_keys

    if not hits:
        print("  no good matches" + (" (--all shows weaker ones)" if query is not None else ""))
        return
    for rank, hit in enumerate(hits, 1):
        when = f" at {format_time(hit.timestamp)}" if hit.kind == "video" and hit.timestamp is not None else ""
        rel = f"  relevance {hit.relevance:5.2f}" if hit.relevance is not None else ""
        where = ", ".join(str(hit.facts[k]) for k in hit_fact_keys() if hit.facts.get(k))
        extra = f"  [{display_text(where)}]" if where else ""
        print(f"  {rank:2d}. {hit.score:.3f}{rel}  {display_text(hit.kind):5s} {display_text(hit.path)}{when}{extra}")


# -- commands -----------------------------------------------------------------------------------


def cmd_index(args) -> int:
    from app.library.indexer import IndexOptions
    from app.models_cli import fetch_if_hub_id

    fetch_if_hub_id(args.model)  # before the library is created: an offline machine changes nothing
    with open_library(args, create=True) as library:
        for path in args.paths:
            folder = library.add_folder(path)
            print(f"watching {display_text(folder)}", file=sys.stderr)
        encoder = load_encoder(args, library)
        from app.library.signal_runner import set_signal_enabled
        from app.library.signals import toggles

        for name in toggles():
            if getattr(args, name) is not None:
                set_signal_enabled(library, name, getattr(args, name))
        options = IndexOptions(batch_size=args.batch_size, workers=args.workers,
                               video_every_s=args.video_interval, video_max_frames=args.max_frames,
                               retry_failed=args.retry_failed, signals=not args.no_signals)
        print(f"indexing into {display_text(library.path)} with {display_text(encoder.model_id)} on {encoder.device}",
              file=sys.stderr)
        report = run_index(library, encoder, options, show_progress=not args.quiet)
        print_report(report)
        return 130 if report.cancelled else 0


def cmd_search(args) -> int:
    from app.library.search import Filters, parse_date

    with open_library(args) as library:
        service = _search_service(args, library)
        filters = Filters(kind=args.kind, folder=args.folder, date_from=parse_date(args.date_from),
                          date_to=parse_date(args.date_to, end=True), signals=signal_filter_values(args),
                          people=tuple(args.person))
        cutoff = float("-inf") if args.all else args.min_relevance
        hits = service.text(args.query, k=args.k, filters=filters, hybrid=not args.no_names, min_relevance=cutoff)
        if args.json:
            print(json.dumps([h.to_dict() for h in hits], indent=1))
        else:
            print_hits(hits, args.query)
    return 0


def cmd_similar(args) -> int:
    with open_library(args) as library:
        hits = _search_service(args, library).similar(args.image, k=args.k)
        if args.json:
            print(json.dumps([h.to_dict() for h in hits], indent=1))
        else:
            print_hits(hits)
    return 0


def cmd_describe(args) -> int:
    with open_library(args) as library:
        texts = _search_service(args, library).describe(args.image, k=args.k, at=args.at)
        if args.json:
            print(json.dumps([t.to_dict() for t in texts], indent=1))
        else:
            for t in texts:
                print(f"  {t.score:.3f}  {display_text(t.text)}" + ("  (caption)" if t.source == "caption" else ""))
    return 0


def cmd_places(args) -> int:
    """Every declared filter with choices, its choices and photo counts (``places``, ``cameras``, ...)."""
    from app.library.signals import fact_filters

    with open_library(args) as library:
        listed = [f for f in fact_filters() if f.choice_keys]
        if args.json:
            print(json.dumps({f"{f.name}s": [{**dict(zip(f.choice_keys, values)), "photos": count}
                                            for values, count in library.choice_groups(f.name)]
                              for f in listed}, indent=1))
            return 0
        for declared in listed:
            choices = library.filter_choices(declared.name)
            print(f"{declared.name}s (`cots search {declared.flag}`):" + ("" if choices else
                  " none yet (or `cots index` has not read them)"))
            for choice, count in choices:
                print(f"  {count:6d}  {display_text(choice)}")
    return 0


def print_signal_status(summary: dict) -> None:
    """One line per signal: what it read, what failed, what waits, or why it does not run."""
    for name, s in summary.items():
        if s["off"]:
            state = "off (`cots index --" + name + "` turns it on)"
        elif s["unavailable"]:
            state = f"unavailable: {display_text(str(s['unavailable']))}"
        else:
            state = f"{s['ok']} read, {s['error']} failed" + (f", {s['pending']} waiting" if s["pending"] else "")
        print(f"  {display_text(name):7s} {state}")


def cmd_status(args) -> int:
    from app.library.signal_runner import second_pass_waiting, signal_summary
    from app.library.signals import pass_name

    with open_library(args) as library:
        status = library.status()
        signals = signal_summary(library)
        remembered = remembered_captions(status.model_source)
        if args.json:
            out = status.to_dict()
            out["caption_memory"] = remembered
            out["signals"] = signals
            out["second_pass_waiting"] = second_pass_waiting(signals)
            out["people"] = people_counts(library)
            out["signal_failures"] = [{"signal": s, "path": p, "error": e}
                                      for s, p, e in library.signal_failures()]
            print(json.dumps(out, indent=1))
            return 0
        print(f"library   {display_text(status.db)}")
        print(f"model     {display_text(status.model) if status.model else '(none yet)'}"
              + (f"  [{display_text(status.model_source)}]" if status.model_source else "")
              + (f", remembers {remembered} captioned photo{'s' if remembered != 1 else ''}" if remembered else ""))
        print(f"folders   {', '.join(map(display_text, status.folders)) or '(none: cots index FOLDER adds one)'}")
        print(f"indexed   {status.indexed} ({status.images} images, {status.videos} videos, "
              f"{status.segments} video segments)" + (f", {status.pending} waiting" if status.pending else ""))
        health = ", ".join(f"{k} {v['in_index']}/{v['in_db']}" + ("" if v["healthy"] else " (repairing)")
                           + (" (rebuilt)" if v.get("rebuilt") else "")
                           + (f" (hnsw ef {v['ef_search']}, graph M {v['M']} / ef_construction "
                              f"{v['ef_construction']})" if v.get("search") == "hnsw" else "")
                           for k, v in status.index.items())
        # the ef and graph settings come from the index's json beside the library: escaped like any file text
        print(f"index     {display_text(health) or '-'}")
        for kind, v in status.index.items():
            if v.get("rebuilt"):
                print(f"  {kind} index: {display_text(str(v['rebuilt']))}")
        print(f"failed    {len(status.failed)}")
        for failure in status.failed:
            print(f"  {display_text(failure.path)}: {display_text(failure.error or '')}")
        print("signals")
        print_signal_status(signals)
        waiting = second_pass_waiting(signals)
        if waiting:
            print(f"  {waiting} photo{'s still wait' if waiting != 1 else ' still waits'} for the second pass ({pass_name()}); "
                  "`cots index` continues it")
        for signal, path, error in library.signal_failures(limit=20):
            print(f"  {display_text(signal)} failed: {display_text(path)}: {display_text(error or '')}")
        people = people_counts(library)
        print(f"people    {people['people']} ({people['named']} named; `cots people` lists them)")
    return 0


def people_counts(library) -> dict[str, int]:
    """How many people the faces were grouped into (seen in one photo or more, hidden ones too), and how many
    have a name."""
    from app.library.people import People

    found = People(library).list(include_hidden=True, min_photos=1)
    return {"people": len(found), "named": sum(1 for person in found if person.name)}


def cmd_forget(args) -> int:
    from app.library.errors import LibraryError

    with open_library(args) as library:
        plan = library.forget_plan(args.path)
        print(f"cots forget will {display_text(plan.describe())}; `cots index FOLDER` brings it back", file=sys.stderr)
        if not args.yes:
            if not sys.stdin.isatty():
                raise LibraryError("forget asks for confirmation: run it in a terminal, or add --yes")
            try:
                answer = input("Forget? [y/N] ")
            except EOFError:
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing forgotten", file=sys.stderr)
                return 1
        removed = library.forget(plan)
        print(f"forgot {display_text(plan.target)} ({removed} item{'s' if removed != 1 else ''} removed)")
    return 0


def remembered_captions(model_source: str | None) -> int:
    """How many captioned photos a fine-tuned model folder remembers (its caption memory, from config.json
    alone: no torch, no weights); 0 for a preset, a missing folder or a config that cannot be read."""
    folder = Path(model_source).expanduser() if model_source else None
    if folder is None or not folder.is_dir():
        return 0
    from cots_core.config import ModelConfig
    from cots_core.errors import CotsError

    try:
        size = ModelConfig.load_json(folder / "config.json").vision.caption_memory
    except (CotsError, OSError, RecursionError):
        return 0
    return size if isinstance(size, int) and size > 0 else 0


def cmd_repair(args) -> int:
    from app.library.paths import default_db_path
    from app.library.repair import repair_library

    path = Path(args.db).expanduser() if args.db else default_db_path()
    print(f"checking {display_text(path)} ...", file=sys.stderr)
    report = repair_library(path)
    if not report.damaged:
        print(f"{display_text(report.path)} is sound (integrity check ok); the vector indexes will be rebuilt")
        return 0
    print(f"{display_text(report.path)} was damaged: {display_text('; '.join(report.problems[:2]))}")
    for note in report.notes:
        print(note)
    print(f"salvaged ({report.method}): " + ", ".join(f"{n} {table}" for table, n in report.rows.items()))
    if report.unreadable:
        print("rows that could not be read were lost from: " + ", ".join(report.unreadable))
    if not report.items_lost and not report.items_lost_exact:
        print("part of the media table could not be read: some indexed items may be lost - their files are "
              "untouched: `cots index` reads them again")
    elif report.items_lost:
        print(f"{'' if report.items_lost_exact else 'at least '}{report.items_lost} indexed "
              f"item{'s' if report.items_lost != 1 else ''} lost "
              + ("" if report.items_lost_exact else "(part of the media table could not be read) ")
              + "- their files are untouched: `cots index` reads them again")
    else:
        print("no indexed item was lost")
    print(f"the damaged file is kept as {display_text(report.kept_as)}")
    if report.to_reembed:
        print(f"{report.to_reembed} salvaged item{'s' if report.to_reembed != 1 else ''} lost their embedding: "
              "run `cots index` to re-embed them")
    if report.without_folder:
        print(f"{report.without_folder} items belong to watched folders the damaged file no longer lists: "
              "run `cots index FOLDER` for each of your folders")
    return 0


def cmd_demo(args) -> int:
    from cots_resources import resource_path

    from app.library import Library
    from app.library.indexer import IndexOptions
    from app.library.paths import data_dir

    sample = resource_path("sample_library")
    if not sample.is_dir():
        from app.library.errors import LibraryError

        raise LibraryError(f"the sample library is missing from this installation ({sample})")
    db = Path(args.db) if args.db else data_dir() / "demo" / "demo.db"
    print(f"cots demo: indexing the sample library {sample}\n          into {db}")
    with Library(db) as library:
        if not args.db:  # the demo's own library shows this installation's sample, not an earlier checkout's
            for folder in library.folders():
                if folder.resolve() != sample.resolve():
                    library.forget(folder)
        library.add_folder(sample)
        started = time.perf_counter()
        encoder = load_encoder(args, library)
        print(f"model {display_text(encoder.model_id)} on {encoder.device} (loaded in {time.perf_counter() - started:.1f}s)")
        report = run_index(library, encoder, IndexOptions())
        print_report(report)
        from app.library.search import SearchService

        service = SearchService(library, encoder)
        for query in DEMO_QUERIES:
            print(f'\ncots search "{query}"')
            print_hits(service.text(query, k=3), query)
        nonsense = "qwzx blorfy vintrap"
        print(f'\ncots search "{nonsense}"   (no real match: the calibrated cut-off should show little or nothing)')
        print_hits(service.text(nonsense, k=3), nonsense)
        probe = sample / "chelsea.jpg"
        print(f"\ncots describe {probe.name}")
        for t in service.describe(probe, k=5):
            print(f"  {t.score:.3f}  {t.text}")
        print(f"\ncots similar {probe.name}")
        print_hits(service.similar(probe, k=3))
        print(f"\nTry your own: cots search \"...\" --db {db}")
    return 0
