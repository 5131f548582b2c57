"""Library errors: messages a person can act on (the CLI prints them, the GUI shows a notice)."""
from __future__ import annotations

from cots_core.errors import CotsError
from cots_core.media import MediaError  # noqa: F401 - re-exported: one error for a file that cannot be read


class LibraryError(CotsError):
    """A library operation failed for a reason the person can fix (bad path, wrong model, ...)."""


class LibraryDamagedError(LibraryError):
    """SQLite cannot read the library database (corrupt pages): ``cots repair`` salvages it."""
