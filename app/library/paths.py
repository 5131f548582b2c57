"""Where libraries live by default (platform conventions, via platformdirs), and the model a new one starts with."""
from __future__ import annotations

from pathlib import Path

# one rule for the model cache and the libraries: cots_core decides where user data lives
from cots_core.paths import data_dir

__all__ = ["DEFAULT_MODEL", "data_dir", "default_db_path"]

DEFAULT_MODEL = "cots-lite"


def default_db_path(name: str = "library") -> Path:
    """The database of the named library (``library`` is the default one)."""
    return data_dir() / "libraries" / f"{name}.db"
