"""The desktop app's start: the Qt application, the settings, the engine and the main window. ``cots gui``
(``app/cli/gui.py``) calls ``open_window`` once the terminal's part is done."""
from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from app.gui.app_identity import set_app_identity
from app.gui.engine_service import EngineService
from app.gui.settings import Settings
from app.gui.window import MainWindow


def open_window(db: str | None, model: str | None, device: str | None) -> int:
    """Open the window and run the event loop until it closes; the model and library load in the background.
    ``model`` (a name, folder or downloaded hub id) is remembered as the model of a new library."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    set_app_identity(app)  # name, launcher entry and icon, before the first window
    settings = Settings()
    if model:
        settings["model"] = model
    # only an explicit --model re-embeds a library indexed with another model (say, a fine-tune chosen with
    # `cots index --model RUN`); the remembered choice applies to a library that has no model yet
    service = EngineService(db or settings["db_path"] or None, model, device, new_library_model=settings["model"])
    window = MainWindow(service, settings, model_label=service.library.model_source or settings["model"])
    if settings["geometry"]:
        window.restoreGeometry(settings["geometry"])
    window.show()
    return app.exec()
