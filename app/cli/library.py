"""The library's commands: index, search, places, similar, describe, status, forget, repair.

Registered by ``app.cli.register_library_commands``. Handlers print; the engine in ``app.library``
never does. Errors the person can fix are ``LibraryError`` (a ``CotsError``): exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.cli.common import (
    add_json_option,
    fetch_if_hub_id,
    finite_float,
    load_encoder,
    media_kind_name,
    non_negative_float,
    open_library,
    path_text,
    positive_float,
    positive_int,
    shared_options,
    typed_text,
)
from app.cli.progress import print_report, run_index
from app.library.pathtext import display_text
from app.library.timefmt import format_time


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the library's commands."""
    common = shared_options("db", "device", "model")
    _add_index_command(subparsers, common)
    _add_search_commands(subparsers, common)
    _add_maintenance_commands(subparsers, common)


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
    from app.library.signals import SIGNAL_CLASSES, display_name, toggles

    for name, toggle in toggles().items():  # --ocr/--no-ocr, --faces/--no-faces: as the signals declare them
        p.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None,
                       help=f"read {toggle.what} after the embeddings (a second, slower pass); the choice is kept "
                            "in the library for later runs (default: on)")
    p.add_argument("--no-signals", action="store_true",
                   help="this run reads no signals at all ("
                        f"{', '.join(display_name(cls) for cls in SIGNAL_CLASSES)}); the next run catches up")
    p.set_defaults(handler=cmd_index)


def _add_search_commands(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("search", parents=[common], help="search the library with words")
    p.add_argument("query")
    p.add_argument("-k", type=positive_int, default=20, help="results at most (default 20)")
    add_json_option(p, "print a JSON list, best first")
    p.add_argument("--kind", type=media_kind_name, help="only this kind of media: image or video")
    p.add_argument("--folder", type=path_text, help="only under this folder")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="YYYY, YYYY-MM or YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="YYYY, YYYY-MM or YYYY-MM-DD")
    p.add_argument("--all", action="store_true", help="also show weak matches (no relevance cut-off)")
    p.add_argument("--min-relevance", type=finite_float, default=None, help="cut-off on the calibrated relevance")
    p.add_argument("--no-names", action="store_true",
                   help="meaning only: ignore file and folder names, captions and the words signals read "
                        "from photos (places, text)")
    add_signal_filter_flags(p)
    p.add_argument("--person", action="append", default=[], metavar="NAME", type=typed_text,
                   help="only photos of this named person (`cots people name`); repeat for several together")
    p.set_defaults(handler=cmd_search)

    p = subparsers.add_parser("places", parents=[common],
                              help="the places your photos were taken, their cameras, ...: each filter's choices",
                              description="The values the signals' filters of `cots search` can take, with photo "
                                          "counts, most photos first: the cities and countries read from the "
                                          "photos' GPS positions (offline), the cameras, and so on.")
    add_json_option(p)
    p.set_defaults(handler=cmd_places)

    p = subparsers.add_parser("similar", parents=[common], help="find media that look like an image")
    p.add_argument("image")
    p.add_argument("-k", type=positive_int, default=10, help="results at most (default 10)")
    add_json_option(p)
    p.set_defaults(handler=cmd_similar)

    p = subparsers.add_parser("describe", parents=[common],
                              help="best-matching words for an image (captions and the shipped vocabulary)")
    p.add_argument("image")
    p.add_argument("-k", type=positive_int, default=10, help="texts at most (default 10)")
    p.add_argument("--at", type=non_negative_float, default=None, metavar="SECONDS",
                   help="for an indexed video: describe the moment at SECONDS, not the whole video")
    add_json_option(p)
    p.set_defaults(handler=cmd_describe)


def _add_maintenance_commands(subparsers: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("status", parents=[common], help="counts, failures, model and index health")
    add_json_option(p)
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


# -- helpers ------------------------------------------------------------------------------------


def _search_service(args, library):
    from app.library.errors import LibraryError
    from app.library.search import SearchService

    if library.model_id is None:
        raise LibraryError(f"the library {library.path} is empty: run `cots index FOLDER` first")
    # searches need the image tower only for a query image outside the library: load it on demand
    encoder = load_encoder(args, library, text_first=True)
    library.read_in_place = True  # one query, then exit: the saved indexes are read in place, not loaded
    return SearchService(library, encoder)


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


def describe_text_queries(path: dict) -> str:
    """How text queries are answered, in words: ONNX Runtime (no torch) and its check, or why PyTorch."""
    if path["runtime"] == "onnxruntime":
        verdict = path.get("verdict") or {}
        return (f"text through ONNX Runtime, without PyTorch (checked on {verdict.get('texts')} texts: same "
                f"top-{verdict.get('k')}, min cosine {verdict.get('min_cosine')})")
    if path["runtime"] == "torch":
        return f"text through PyTorch: {display_text(str(path['why']))}"
    return "-"


def cmd_status(args) -> int:
    from app.library.query_encoder import text_query_path
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
            out["text_queries"] = text_query_path(status.model)
            print(json.dumps(out, indent=1))
            return 0
        print(f"library   {display_text(status.db)}")
        print(f"model     {display_text(status.model) if status.model else '(none yet)'}"
              + (f"  [{display_text(status.model_source)}]" if status.model_source else "")
              + (f", remembers {remembered} captioned photo{'s' if remembered != 1 else ''}" if remembered else ""))
        print(f"queries   {describe_text_queries(text_query_path(status.model))}")
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
