"""The record beside a checkpoint of which items its caption memory holds (``ITEMS_FILE``), so that `cots eval`
never scores one: the memory would find it by its own caption.

An item is recognised by its content, not only its path, so a copied or moved folder does not hide it. Each
remembered item is recorded with two digests:

- ``file``: ``cots_core.media.content_hash`` of its bytes (the whole file up to 2 MiB, else its size and first
  and last MiB), the hash the app recognises moved files by. Byte copies, images and videos alike, match it.
  A large file that differs only in its middle matches too: then an unseen item is left out, never a remembered
  one scored.
- ``pixels`` (images only): sha256 of the decoded pixels (upright RGB, full size). A copy written again without
  loss (metadata stripped, re-saved PNG, PNG to lossless WebP) has other bytes and the same pixels.

A lossy re-encode or a resize changes the pixels and is not caught: a digest of a small thumbnail, compared
exactly, would not catch it either (the compression moves a few pixel values), and a near-match would also
leave out honest items that merely look alike (burst shots, the synthetic set's plain shapes).

Format 2 is ``{"format": 2, "items": [{"path", "file", "pixels"}, ...]}``. Format 1, written before the digests,
is a bare list of paths: it is still honoured, by hashing the files at those paths now; when some are gone, it
cannot be trusted and the record is refused (ValueError), so a moved run is rebuilt rather than scored.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from cots_core.media import content_hash
from trainer.data.media import MediaError, load_image, media_kind
from trainer.data.records import Record

ITEMS_FILE = "caption_memory_items.json"
RECORD_FORMAT = 2
REBUILD = "rebuild it with `cots train finetune --from MODEL --data TRAINING_DATA --steps 0 --out NEW`"


def file_digest(record: Record) -> str | None:
    """``content_hash`` of the record's bytes; None when they cannot be read."""
    try:
        return content_hash(record.path, record.payload) if record.payload is not None else content_hash(record.path)
    except OSError:
        return None


def pixel_digest(record: Record) -> str | None:
    """sha256 of an image's upright RGB pixels and size; None for a video or an image that does not decode."""
    if record.kind != "image":
        return None
    try:
        image = load_image(record.payload if record.payload is not None else record.path, record.path)
    except (MediaError, OSError):
        return None
    digest = hashlib.sha256(f"{image.width}x{image.height}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def save_memory_items(directory: str | Path, records: list[Record]) -> None:
    """Record the items a checkpoint's caption memory was built from (``ITEMS_FILE``, format 2)."""
    items = [{"path": r.path, "file": file_digest(r), "pixels": pixel_digest(r)}
             for r in sorted({r.path: r for r in records}.values(), key=lambda r: r.path)]
    lines = ",\n".join(json.dumps(item) for item in items)  # one item a line: readable, and diffs stay small
    (Path(directory) / ITEMS_FILE).write_text(f'{{"format": {RECORD_FORMAT}, "items": [\n{lines}\n]}}\n')


@dataclass
class RememberedItems:
    """What a record lists: an item is remembered when its path, its bytes or its pixels are among these."""

    paths: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    pixels: set[str] = field(default_factory=set)

    def holds(self, record: Record) -> bool:
        if record.path in self.paths or file_digest(record) in self.files:
            return True
        # decoding costs more than hashing: only for images, and only when the bytes did not match
        return bool(self.pixels) and record.kind == "image" and pixel_digest(record) in self.pixels

    def add(self, path: str, file: str | None, pixels: str | None) -> None:
        self.paths.add(path)
        if file:
            self.files.add(file)
        if pixels:
            self.pixels.add(pixels)


def memory_size(directory: str | Path) -> int:
    """How many entries the model's config.json says its caption memory holds (``vision.caption_memory``),
    without loading its weights; 0 for a named model, a Hugging Face folder or a config without one."""
    path = Path(directory) / "config.json"
    try:
        vision = json.loads(path.read_text()).get("vision") if path.is_file() else None
    except (OSError, ValueError, AttributeError):
        return 0  # loading the model says what is wrong with it
    size = vision.get("caption_memory") if isinstance(vision, dict) else 0
    return size if isinstance(size, int) and not isinstance(size, bool) else 0


def remembered_items(directory: str | Path) -> RememberedItems | None:
    """The items a checkpoint's caption memory holds; None when the model has no memory and no record.
    ValueError (one line) when the config says there is a memory and the record of its items is missing, when
    the record cannot be read, or when it lists by path files that are no longer there."""
    size, path = memory_size(directory), Path(directory) / ITEMS_FILE
    if not path.is_file():
        if size:
            raise ValueError(f"{directory} has a caption memory of {size} items but not the record of which items "
                             f"they are ({ITEMS_FILE}), so cots eval cannot leave them out: copy that file back "
                             f"from the run, or {REBUILD}")
        return None
    unreadable = ValueError(f"{path} is not a record of caption memory items this cots can read: {REBUILD}")
    try:
        listed = json.loads(path.read_text())
    except (OSError, ValueError):
        raise unreadable from None
    if isinstance(listed, list) and all(isinstance(item, str) for item in listed):
        return from_paths(listed, directory)
    try:
        if listed["format"] == RECORD_FORMAT:
            return from_digests(listed["items"])
    except (KeyError, TypeError, AttributeError):
        pass
    raise unreadable


def from_digests(items: list[dict]) -> RememberedItems:
    remembered = RememberedItems()
    for item in items:
        remembered.add(str(item["path"]), item.get("file"), item.get("pixels"))
    return remembered


def from_paths(paths: list[str], directory: str | Path) -> RememberedItems:
    """A format-1 record (paths only) given the digests of the files at those paths now."""
    remembered, missing = RememberedItems(), 0
    for path in paths:
        record = Record(path, [], kind=media_kind(path) or "image")
        file = file_digest(record) if Path(path).is_file() else None
        missing += file is None
        remembered.add(path, file, pixel_digest(record) if file else None)
    if missing:
        raise ValueError(f"{Path(directory) / ITEMS_FILE} lists its items by path only (an older cots wrote it) "
                         f"and {missing} of them are no longer there to be recognised by their content: {REBUILD}")
    return remembered
