"""WebDataset tar shards as img2dataset writes them (``000000.tar`` holding ``key.jpg`` + ``key.txt``),
streamed once through, never unpacked to disk.

Shards are split between ranks and DataLoader workers by index (or, when there are fewer shards than
consumers, sample by sample), repeated epoch after epoch with a seeded shard order and shuffle buffer,
so every rank always has data and DDP never waits on an exhausted rank. A seeded hash of the sample
key holds out a validation fraction that never overlaps the training stream.
"""
from __future__ import annotations

import itertools
import json
import random
import re
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.utils.data import IterableDataset, get_worker_info

from trainer.data.media import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    MediaError,
    load_image,
    read_video_frame,
    read_video_frames,
)
from trainer.data.records import REASON_EMPTY_CAPTION, LoadReport, Record, clean_caption

REASON_NO_MEDIA = "missing file"
REASON_BAD_SHARD = "unreadable shard"
REASON_MEMBER_TOO_LARGE = "member too large"
# Members are read whole (a sample's bytes go to the decoder): the size in the tar header is checked first.
# A 1.46 MB .tar.gz held a 1.5 GB member of zeros and took the trainer to 4.15 GB (issue 21).
MAX_MEDIA_MEMBER_BYTES = 256 << 20  # a training image or clip; the app refuses images over 1 GiB
MAX_TEXT_MEMBER_BYTES = 1 << 20  # captions and json
_BRACE = re.compile(r"\{([^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """``a/{000..003}.tar`` -> four names (zero padding kept); ``{x,y}`` alternatives; nests left to right."""
    match = _BRACE.search(pattern)
    if not match:
        return [pattern]
    body = match.group(1)
    head, tail = pattern[: match.start()], pattern[match.end():]
    if ".." in body:
        lo, hi = body.split("..", 1)
        width = len(lo) if lo.startswith("0") else 0
        options = [str(i).zfill(width) for i in range(int(lo), int(hi) + 1)]
    else:
        options = body.split(",")
    return [name for option in options for name in expand_braces(head + option + tail)]


def is_shard_spec(spec: str) -> bool:
    return bool(_BRACE.search(spec)) or spec.endswith(".tar") or (
        Path(spec).is_dir() and any(Path(spec).glob("*.tar")) and not any(Path(spec).glob("*.txt")))


def shard_list(spec: str) -> list[str]:
    """The shard files a spec names; a folder means every ``.tar`` in it."""
    if Path(spec).is_dir():
        names = sorted(str(p) for p in Path(spec).glob("*.tar"))
    else:
        names = expand_braces(spec)
    missing = [n for n in names if not Path(n).is_file()]
    if not names or len(missing) == len(names):
        raise FileNotFoundError(f"no shard found for {spec!r}")
    return names


def _split_key(name: str) -> tuple[str, str]:
    directory, _, base = name.rpartition("/")
    stem, _, ext = base.partition(".")
    return (f"{directory}/{stem}" if directory else stem), ext.lower()


def member_limit(ext: str) -> int:
    """The largest member of this extension read into memory."""
    return MAX_MEDIA_MEMBER_BYTES if f".{ext}" in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS else MAX_TEXT_MEMBER_BYTES


def iter_tar_samples(shard: str, report: LoadReport) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) for consecutive members sharing a key; a broken shard is counted, not raised.
    A sample with a member over ``member_limit`` is skipped (counted once) without reading that member."""
    current, members, oversized = None, {}, False
    try:
        with tarfile.open(shard, mode="r|*") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                key, ext = _split_key(info.name)
                if current is not None and key != current:
                    if not oversized:
                        yield current, members
                    members, oversized = {}, False
                current = key
                if oversized:
                    continue
                if info.size > member_limit(ext):  # the stream steps over its bytes in small blocks
                    report.skip(REASON_MEMBER_TOO_LARGE, f"{Path(shard).name}#{info.name}: {info.size:,} bytes, "
                                f"over the limit of {member_limit(ext):,} for a .{ext} member")
                    oversized = True
                    continue
                members[ext] = tar.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        report.skip(REASON_BAD_SHARD, f"{shard} ({error})")
    if current is not None and members and not oversized:
        yield current, members


def sample_record(shard: str, key: str, members: dict[str, bytes], report: LoadReport) -> Record | None:
    """A shard sample as a Record with its media bytes as payload, or None (counted) when unusable."""
    name = f"{Path(shard).name}#{key}"
    media = next(((ext, members[ext]) for ext in members if f".{ext}" in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS), None)
    if media is None:
        report.skip(REASON_NO_MEDIA, f"{name}: no image or video member")
        return None
    captions: list[str] = []
    if "txt" in members:
        captions = [clean_caption(line) for line in members["txt"].decode("utf-8", "replace").splitlines()]
    elif "json" in members:
        try:
            captions = [clean_caption(json.loads(members["json"]).get("caption"))]
        except (json.JSONDecodeError, AttributeError):
            captions = []
    captions = [c for c in captions if c]
    if not captions:
        report.skip(REASON_EMPTY_CAPTION, name)
        return None
    ext, payload = media
    kind = "video" if f".{ext}" in VIDEO_EXTENSIONS else "image"
    return Record(f"{shard}#{key}.{ext}", captions, kind, payload=payload)


def in_holdout(key: str, fraction: float, seed: int) -> bool:
    """Seeded, order-independent membership of the held-out (validation) part."""
    return fraction > 0 and zlib.crc32(f"{seed}:{key}".encode()) / 2**32 < fraction


def decode_record(record: Record, frames: int = 8, frame: int | None = None):
    """PIL image (or list of frames, or one frame when ``frame`` is given) for a record with a payload."""
    if record.kind == "image":
        return load_image(record.payload, record.path)
    suffix = Path(record.path).suffix
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:  # OpenCV reads files, not bytes
        tmp.write(record.payload)
        tmp.flush()
        return read_video_frame(tmp.name, frame, frames) if frame is not None else read_video_frames(tmp.name, frames)


def read_holdout(spec: str, fraction: float, seed: int, limit: int = 5000,
                 report: LoadReport | None = None) -> list[Record]:
    """The held-out samples of a shard set, in memory (for evaluation)."""
    report = report or LoadReport(source=spec)
    out: list[Record] = []
    for shard in shard_list(spec):
        for key, members in iter_tar_samples(shard, report):
            if len(out) >= limit:
                return out
            if in_holdout(f"{Path(shard).name}#{key}", fraction, seed):
                record = sample_record(shard, key, members, report)
                if record is None:
                    continue
                try:
                    decode_record(record, 1, 0 if record.kind == "video" else None)
                except MediaError as error:
                    report.skip(error.reason, str(error).split(": ", 1)[-1])
                    continue
                out.append(record)
    report.count(out)
    return out


class ShardStream(IterableDataset):
    """Endless stream of training pairs from tar shards (the held-out fraction excluded).

    Yields the same dicts as ``PairDataset``: pixels, text, index (-1), path, skipped (reasons of the
    samples dropped since the previous yield, so counts survive DataLoader worker processes).
    """

    def __init__(self, spec: str, transform: Callable, seed: int = 0, val_fraction: float = 0.0,
                 frames: int = 8, shuffle_buffer: int = 256, rank: int = 0, world_size: int = 1,
                 skip: int = 0):
        self.shards = shard_list(spec)
        self.transform, self.seed, self.val_fraction = transform, seed, val_fraction
        self.frames, self.shuffle_buffer = frames, shuffle_buffer
        self.rank, self.world_size, self.skip = rank, world_size, skip

    def _consumer(self) -> tuple[int, int]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        return self.rank * workers + worker, self.world_size * workers

    def _samples(self, epoch: int, consumer: int, consumers: int, report: LoadReport):
        order = list(self.shards)
        random.Random(self.seed + epoch).shuffle(order)
        by_shard = len(order) >= consumers
        mine = order[consumer::consumers] if by_shard else order
        counter = 0
        for shard in mine:
            for key, members in iter_tar_samples(shard, report):
                if in_holdout(f"{Path(shard).name}#{key}", self.val_fraction, self.seed):
                    continue
                if not by_shard:
                    counter += 1
                    if (counter - 1) % consumers != consumer:
                        continue
                record = sample_record(shard, key, members, report)
                if record is not None:
                    for caption in record.captions:
                        yield record, caption

    def __iter__(self):
        consumer, consumers = self._consumer()
        report = LoadReport()
        skip = self.skip // max(1, consumers // self.world_size)
        produced = 0
        for epoch in itertools.count():
            rng = random.Random(f"{self.seed}:{epoch}:{consumer}")
            buffer: list = []
            for item in self._samples(epoch, consumer, consumers, report):
                buffer.append(item)
                if len(buffer) < self.shuffle_buffer:
                    continue
                out = self._emit(buffer.pop(rng.randrange(len(buffer))), epoch, report)
                if out is not None:
                    produced += 1
                    if produced > skip:
                        yield out
            while buffer:
                out = self._emit(buffer.pop(rng.randrange(len(buffer))), epoch, report)
                if out is not None:
                    produced += 1
                    if produced > skip:
                        yield out
            if produced == 0 and epoch > 0:
                raise RuntimeError(f"no usable sample in {len(self.shards)} shard(s): {report.summary()}")

    def _emit(self, item, epoch: int, report: LoadReport) -> dict | None:
        record, caption = item
        seed = zlib.crc32(f"{self.seed}:{epoch}:{record.path}:{caption}".encode())
        try:
            images = decode_record(record, self.frames) if record.kind == "video" else [decode_record(record)]
            frames = []
            for image in images:  # a video: all its frames, one augmentation draw (as PairDataset)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)
                    frames.append(self.transform(image))
            pixels = torch.stack(frames) if record.kind == "video" else frames[0]
        except MediaError as error:
            report.skip(error.reason, str(error).split(": ", 1)[-1])
            return None
        skipped, report.skipped = list(report.skipped.elements()), report.skipped.__class__()
        return {"pixels": pixels, "text": caption, "index": -1, "path": record.path, "skipped": skipped}
