"""What the command groups share: the options every library command takes (``--db``, ``--model``,
``--device``, ``--json``), defined once here; the argparse types of numbers, paths and text; opening the
library, loading its model, and downloading a hub model named on the command line (with a progress bar)."""
from __future__ import annotations

import argparse
import math
import os
import sys

from app.library.pathtext import display_text

# name -> (flag, argparse keywords): each command asks for the ones it takes, by name (``shared_options``)
SHARED_OPTIONS: dict[str, tuple[str, dict]] = {
    "db": ("--db", dict(metavar="PATH", help="library database (default: the library in your user data folder)")),
    "device": ("--device", dict(default=None, help="auto (default), cpu, cuda, cuda:1 or mps")),
    "model": ("--model", dict(default=None,
                              help="model name, checkpoint folder or Hugging Face hub id ORG/NAME, downloaded once "
                                   "(default: the library's own, else cots-lite; `cots models` lists them)")),
    "json": ("--json", dict(action="store_true", help="print JSON")),
}


def shared_options(*names: str) -> argparse.ArgumentParser:
    """A parent parser (``add_parser(..., parents=[...])``) holding the shared options named, in that order."""
    parent = argparse.ArgumentParser(add_help=False)
    for name in names:
        flag, keywords = SHARED_OPTIONS[name]
        parent.add_argument(flag, **keywords)
    return parent


def add_json_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:  # noqa: A002 - argparse's name
    """``--json``, with the command's own words for what it prints when it has them."""
    flag, keywords = SHARED_OPTIONS["json"]
    parser.add_argument(flag, **{**keywords, **({"help": help} if help else {})})


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


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value:g}")
    return value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
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


# -- the library and its model ------------------------------------------------------------------


def open_library(args, create: bool = False):
    """The library of ``--db`` (or the default one); only ``create=True`` commands may start a new one."""
    from app.library import Library

    return Library(args.db, create=create)


def load_encoder(args, library, text_first: bool = False):
    """The model for a command: for indexing the full one; for searching (``text_first``) the library's
    model's ONNX text graph where it has one (no torch), else the text-first PyTorch path."""
    from app.library.paths import DEFAULT_MODEL
    from app.library.query_encoder import load_query_encoder

    source = args.model or library.model_source or DEFAULT_MODEL
    fetch_if_hub_id(args.model)  # a hub id named on the command line is downloaded once; the library keeps the id
    print(f"loading model {display_text(source)} ...", file=sys.stderr, flush=True) if not getattr(args, "json", False) else None
    if text_first:
        # the graph is keyed by the id of the model the library was indexed with: only for that model
        own_model = args.model is None or args.model == library.model_source
        return load_query_encoder(source, library.model_id if own_model else None, device=args.device)
    from app.library.encoder import Encoder

    return Encoder.load(source, device=args.device)


def announce_download(repo_id: str, folder) -> None:
    print(f"downloading {repo_id} from the Hugging Face hub into {display_text(folder)} (once; "
          "Ctrl+C stops it, the next run resumes) ...", file=sys.stderr, flush=True)


def fetch_if_hub_id(name: str | None) -> None:
    """A hub id the person named that is not downloaded yet is downloaded now, with a progress bar."""
    from app.library.transfer_bar import transfer_bar_class
    from cots_core import hub

    if name and hub.looks_like_hub_id(name) and hub.downloaded_path(name) is None:
        hub.resolve_model_source(name, tqdm_class=transfer_bar_class(), on_download=announce_download)
