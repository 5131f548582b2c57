"""Walking the watched folders: what is on disk now, without reading any file's content."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.library.dates import clamp_mtime_ns
from cots_core.media import media_kind, read_captions

log = logging.getLogger(__name__)

# Folders no person keeps photos in: OS, NAS and tool droppings.
SYSTEM_FOLDERS = {
    "$recycle.bin", "system volume information", "lost+found", "@eadir", "#recycle", "__macosx",
    "node_modules", "__pycache__", "thumbs", ".thumbnails", "$windows.~bt", "appdata",
}


@dataclass
class ScannedFile:
    path: Path
    root: Path  # the watched folder it was found under
    kind: str
    size: int
    mtime_ns: int  # clamped to the library's date range (app.library.dates), as it is stored and compared


@dataclass
class ScanResult:
    files: list[ScannedFile] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # unreadable folder -> reason
    unreadable: list[Path] = field(default_factory=list)  # folders whose old rows must be kept


def is_skipped_folder(name: str) -> bool:
    return name.startswith(".") or name.lower() in SYSTEM_FOLDERS


class LibraryScanner:
    """Lists the media files under some folders.

    Hidden and system folders are skipped; symlinked folders are followed once (a loop is cut by
    remembering each directory's (device, inode)); a file reached through several hard links or
    symlinks is listed once.
    """

    def __init__(self, on_folder: Callable[[Path, int], None] | None = None):
        # progress hook, called per directory with the files found so far (cancellation check point)
        self.on_folder = on_folder

    def scan(self, roots: Iterable[Path]) -> ScanResult:
        result = ScanResult()
        seen_dirs: set[tuple[int, int]] = set()
        seen_files: set[tuple[int, int]] = set()
        for root in roots:
            root = Path(root)
            if not root.is_dir():
                result.errors[str(root)] = "folder not found (removed, renamed or an unmounted drive)"
                result.unreadable.append(root)
                continue
            self._walk(root, root, result, seen_dirs, seen_files)
        return result

    def _walk(self, root: Path, folder: Path, result: ScanResult, seen_dirs: set, seen_files: set) -> None:
        stack = [folder]
        while stack:
            current = stack.pop()
            try:
                info = os.stat(current)
            except OSError as error:
                result.errors[str(current)] = f"folder cannot be read: {error.strerror or error}"
                result.unreadable.append(current)
                continue
            key = (info.st_dev, info.st_ino)
            if key in seen_dirs:
                continue  # symlink loop or a folder reached twice
            seen_dirs.add(key)
            if self.on_folder:
                self.on_folder(current, len(result.files))
            try:
                with os.scandir(current) as entries:
                    entries = sorted(entries, key=lambda e: e.name)
            except OSError as error:
                result.errors[str(current)] = f"folder cannot be read: {error.strerror or error}"
                result.unreadable.append(current)
                continue
            subfolders = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=True):
                        if not is_skipped_folder(entry.name):
                            subfolders.append(Path(entry.path))
                        continue
                    kind = media_kind(entry.name)
                    if kind is None or not entry.is_file(follow_symlinks=True):
                        continue
                    stat = entry.stat(follow_symlinks=True)
                except OSError:
                    continue  # vanished or a dangling symlink: it is simply not there
                file_key = (stat.st_dev, stat.st_ino)
                if file_key in seen_files:
                    continue  # hard link / symlink to a file already listed
                seen_files.add(file_key)
                result.files.append(ScannedFile(Path(entry.path), root, kind, stat.st_size,
                                                clamp_mtime_ns(stat.st_mtime_ns)))
            stack.extend(reversed(subfolders))


def read_caption(path: Path, root: Path | None = None) -> str | None:
    """The sidecar caption the library indexes: the lines of ``cots_core.media.read_captions`` joined
    (the trainer reads the same sidecar, one caption per line). Only a regular file inside ``root``, the
    watched folder, is read (a symlinked sidecar may point anywhere)."""
    captions = read_captions(path, root)
    return " ".join(captions) if captions else None


def display_name(path: Path) -> str:
    """File name for full-text search: 'IMG_2019-paris.jpg' -> 'IMG 2019 paris'."""
    stem = path.stem
    for separator in "_-.+":
        stem = stem.replace(separator, " ")
    return stem


def folder_names(path: Path, root: Path) -> str:
    """The watched folder's name and every folder between it and the file, for full-text search."""
    try:
        relative = path.parent.relative_to(root)
        parts = [root.name, *relative.parts]
    except ValueError:
        parts = list(path.parent.parts[-3:])
    return " ".join(p for p in parts if p and p != ".")
