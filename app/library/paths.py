"""Where libraries live by default (platform conventions, via platformdirs)."""
from __future__ import annotations

from pathlib import Path

# one rule for the model cache and the libraries: cots_core decides where user data lives
from cots_core.paths import data_dir

__all__ = ["data_dir", "default_db_path"]


def default_db_path(name: str = "library") -> Path:
    """The database of the named library (``library`` is the default one)."""
    return data_dir() / "libraries" / f"{name}.db"
