"""``cots gui [--db PATH] [--model NAME]``: registered by ``app/library_cli.py`` through ``register``."""
from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("gui", help="open the desktop app (search, drag and drop, indexing)")
    parser.add_argument("--db", help="library database (default: the user data directory's library)")
    parser.add_argument("--model", help="model for a new library: a preset name (cots-lite), a checkpoint "
                                        "folder or a Hugging Face hub id ORG/NAME, downloaded once (default: the "
                                        "model the library was indexed with)")
    parser.add_argument("--device", help="auto, cpu, cuda or mps")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Open the window; the model and library load in the background."""
    from app.gui.platform_check import xcb_problem
    from cots_core.errors import CotsError

    problem = xcb_problem()  # before Qt: a missing xcb library makes Qt abort with its own text
    if problem:
        raise CotsError(problem)
    from app.models_cli import fetch_if_hub_id

    fetch_if_hub_id(args.model)  # in the terminal, before the window: a progress bar and Ctrl+C work here
    from PySide6.QtWidgets import QApplication

    from app.gui.engine_service import EngineService
    from app.gui.settings import Settings
    from app.gui.window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("cots")
    app.setOrganizationName("cots")
    settings = Settings()
    if args.model:
        settings["model"] = args.model
    service = EngineService(args.db or settings["db_path"] or None, args.model or settings["model"], args.device)
    window = MainWindow(service, settings, model_label=service.library.model_source or settings["model"])
    if settings["geometry"]:
        window.restoreGeometry(settings["geometry"])
    window.show()
    return app.exec()
