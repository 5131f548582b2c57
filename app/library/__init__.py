"""The library engine: storage, scanning, indexing and search, shared by the CLI and the GUI (no Qt)."""
from app.library.errors import LibraryError, MediaError
from app.library.library import Failure, Library, LibraryStatus, MediaRecord
from app.library.paths import default_db_path

__all__ = [
    "Failure", "Library", "LibraryError", "LibraryStatus", "MediaError", "MediaRecord", "default_db_path",
]
