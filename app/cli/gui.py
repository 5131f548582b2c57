"""``cots gui [--db PATH] [--model NAME] [--device DEVICE]``: open the desktop app. What happens in the
terminal (the platform check, a hub model's download with its progress bar) happens here; the window
itself is ``app.gui.launch``, imported only when the command runs (the GUI never imports the CLI)."""
from __future__ import annotations

import argparse
from importlib.util import find_spec

from app.cli.common import shared_options


def register(subparsers: argparse._SubParsersAction) -> None:
    if find_spec("app.gui") is None:  # an installation without the desktop app has no `cots gui`
        return
    parser = subparsers.add_parser("gui", parents=[shared_options("db", "device", "model")],
                                   help="open the desktop app (search, drag and drop, indexing)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Open the window; the model and library load in the background."""
    from app.cli.common import fetch_if_hub_id
    from app.gui.platform_check import xcb_problem
    from cots_core.errors import CotsError

    problem = xcb_problem()  # before Qt: a missing xcb library makes Qt abort with its own text
    if problem:
        raise CotsError(problem)
    fetch_if_hub_id(args.model)  # in the terminal, before the window: a progress bar and Ctrl+C work here
    from app.gui.launch import open_window

    return open_window(args.db, args.model, args.device)
