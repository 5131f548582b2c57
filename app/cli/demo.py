"""``cots demo``: index the sample library shipped with cots and run a few searches on it."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from app.cli.common import load_encoder, shared_options
from app.cli.library import print_hits
from app.cli.progress import print_report, run_index
from app.library.pathtext import display_text

DEMO_QUERIES = [
    "a cat",  # a photo and a moment in the video
    "a cup of espresso",
    "a rocket launch",
    "a woman in military uniform",
    "a temple",  # meaning, helped by a sidecar caption
    "China 2011",  # a folder name: the full-text half of hybrid search
]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", parents=[shared_options("db", "device", "model")],
                              help="index the shipped sample library and run a few searches")
    p.set_defaults(handler=cmd_demo)


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
