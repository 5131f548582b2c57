"""The per-user data directory shared by the model cache and the application's libraries."""
from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "cots"


def data_dir() -> Path:
    """Per-user data directory (platformdirs); ``COTS_DATA_DIR`` overrides it (tests, portable installs)."""
    override = os.environ.get("COTS_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
