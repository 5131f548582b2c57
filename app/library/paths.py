"""Where libraries live by default (platform conventions, via platformdirs)."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "cots"


def data_dir() -> Path:
    """Per-user data directory; ``COTS_DATA_DIR`` overrides it (tests, portable installs)."""
    override = os.environ.get("COTS_DATA_DIR")
    return Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_db_path(name: str = "library") -> Path:
    """The database of the named library (``library`` is the default one)."""
    return data_dir() / "libraries" / f"{name}.db"
