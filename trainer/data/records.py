"""The common currency of every reader: ``Record`` (one image or video with its captions) and
``LoadReport`` (what was loaded, what was skipped and why)."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

REASON_EMPTY_CAPTION = "empty caption"
REASON_NO_CAPTION = "no caption"
REASON_BAD_ROW = "malformed row"
REASON_OVERLAP = "also in validation set"

_SPACES = re.compile(r"\s+")


def clean_caption(text: object) -> str:
    """Collapse whitespace; '' for anything empty."""
    return _SPACES.sub(" ", str(text or "")).strip()


@dataclass
class Record:
    """One image or video with its captions. ``path`` is absolute, or ``shard.tar#key`` for shard members
    (then ``payload`` holds the encoded bytes). ``split`` comes from the source when it has one."""

    path: str
    captions: list[str]
    kind: str = "image"
    split: str | None = None
    payload: bytes | None = field(default=None, repr=False)


@dataclass
class LoadReport:
    """Counts of loaded and skipped rows; the first few skip reasons are kept verbatim for printing."""

    source: str = ""
    skipped: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    max_examples: int = 5
    n_images: int = 0
    n_videos: int = 0
    n_captions: int = 0

    def skip(self, reason: str, detail: str = "") -> None:
        self.skipped[reason] += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(f"{reason}: {detail}" if detail else reason)

    def merge(self, other: LoadReport) -> None:
        self.skipped.update(other.skipped)
        room = self.max_examples - len(self.examples)
        self.examples.extend(other.examples[: max(0, room)])
        self.n_images += other.n_images
        self.n_videos += other.n_videos
        self.n_captions += other.n_captions

    def count(self, records: list[Record]) -> None:
        self.n_images = sum(r.kind == "image" for r in records)
        self.n_videos = sum(r.kind == "video" for r in records)
        self.n_captions = sum(len(r.captions) for r in records)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        head = f"{self.source}: " if self.source else ""
        line = f"{head}{self.n_images} images, {self.n_videos} videos, {self.n_captions} captions"
        if not self.skipped:
            return line + ", nothing skipped"
        parts = ", ".join(f"{n} {reason}" for reason, n in self.skipped.most_common())
        lines = [f"{line}; skipped {self.n_skipped} ({parts})"]
        lines += [f"  e.g. {example}" for example in self.examples]
        return "\n".join(lines)


def merge_by_path(records: list[Record]) -> list[Record]:
    """One record per path, captions concatenated in first-seen order (manifests repeat paths)."""
    merged: dict[str, Record] = {}
    for record in records:
        seen = merged.get(record.path)
        if seen is None:
            merged[record.path] = Record(record.path, list(record.captions), record.kind, record.split,
                                         record.payload)
        else:
            seen.captions.extend(record.captions)
    return list(merged.values())
