"""Torch datasets over records: training pairs (one per caption) and the batch order that makes
training resumable and identical across ranks.

Augmentation randomness is seeded per (seed, epoch, sample), so a sample looks the same whichever
worker or rank decodes it, and a resumed run sees exactly what the uninterrupted run saw.
"""
from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Dataset, Sampler

from trainer.data.media import MediaError, load_image, read_video_frame, read_video_frames
from trainer.data.records import Record

MAX_REPLACEMENTS = 16


def load_frames(record: Record, frames: int = 8) -> list:
    """The record's image (a list of one), or its video's N evenly spaced frames, as RGB PIL."""
    if record.kind != "video":
        return [load_frame(record, frames)]
    if record.payload is not None:
        from trainer.data.webdataset import decode_record

        return decode_record(record, frames)
    return read_video_frames(record.path, frames)


def load_frame(record: Record, frames: int = 8, which: int = 0):
    """The record's image, or one of its video's N evenly spaced frames, as RGB PIL."""
    if record.payload is not None:
        from trainer.data.webdataset import decode_record

        return decode_record(record, frames, which if record.kind == "video" else None)
    if record.kind == "video":
        return read_video_frame(record.path, which, frames)
    return load_image(record.path)


class PairDataset(Dataset):
    """One sample per (item, caption) pair. Indexed by ``(pair, epoch)`` (or a plain pair index, epoch 0).

    A video pair's ``pixels`` are its N evenly spaced frames [N, 3, S, S] (one augmentation draw for all),
    trained as the mean of their embeddings, the representation search uses. A file that fails to
    decode is replaced by the next pair, and the reason rides along in the sample's ``skipped`` list,
    so batches keep their size (DDP gathers need equal shapes) and the counts reach the main process
    even from worker processes.
    """

    def __init__(self, records: list[Record], transform: Callable, seed: int = 0, frames: int = 8,
                 visual_tokens: list[torch.Tensor] | None = None):
        self.records, self.transform, self.seed, self.frames = records, transform, seed, frames
        # per record [frames, grid] (a photo: [1, grid]), precomputed with the eval transform (build._token_cache)
        self.visual_tokens = visual_tokens
        self.pairs = [(r, c) for r, record in enumerate(records) for c in range(len(record.captions))]
        if not self.pairs:
            raise ValueError("no usable image-caption pair to train on")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key) -> dict:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        skipped: list[str] = []
        for attempt in range(MAX_REPLACEMENTS):
            pair = (index + attempt) % len(self.pairs)
            r, c = self.pairs[pair]
            record = self.records[r]
            seed = zlib.crc32(f"{self.seed}:{epoch}:{pair}".encode())
            try:
                images = load_frames(record, self.frames)
            except MediaError as error:
                skipped.append(error.reason)
                continue
            frames = []
            for image in images:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(seed)  # the same crop and flip for every frame of a video
                    frames.append(self.transform(image))
            pixels = torch.stack(frames) if record.kind == "video" else frames[0]
            sample = {"pixels": pixels, "text": record.captions[c], "index": pair, "path": record.path,
                      "skipped": skipped}
            if self.visual_tokens is not None:
                sample["visual_tokens"] = self.visual_tokens[r]
            return sample
        raise RuntimeError(f"{MAX_REPLACEMENTS} files in a row could not be read, last: {record.path}")


def item_key(path: str) -> int:
    """A 63-bit key (>= 0) of the item a pair comes from: its record's path (a file, or shard#key), so the
    pairs of one photo's several captions share it (``COTS.training_step``'s ``item_keys``)."""
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=8).digest(), "little") >> 1


def collate_pairs(samples: list[dict]) -> dict:
    """Stack pixels; keep texts, pair indices, paths (and their ``item_keys``) and the skip reasons of the
    whole batch.

    With video pairs in the batch, ``pixels`` holds every frame, pair after pair, and ``frame_owner``
    [frames] the pair of each (``COTS.training_step`` averages a pair's frame embeddings)."""
    clips = [s["pixels"] if s["pixels"].dim() == 4 else s["pixels"][None] for s in samples]
    batch = {
        "pixels": torch.cat(clips),
        "texts": [s["text"] for s in samples],
        "index": torch.tensor([s["index"] for s in samples], dtype=torch.long),
        "paths": [s["path"] for s in samples],
        "item_keys": torch.tensor([item_key(s["path"]) for s in samples], dtype=torch.long),
        "skipped": [reason for s in samples for reason in s["skipped"]],
    }
    if "visual_tokens" in samples[0]:
        # one row per frame, as pixels
        batch["visual_tokens"] = torch.cat([s["visual_tokens"] if s["visual_tokens"].dim() == 2
                                            else s["visual_tokens"][None] for s in samples])
    if batch["pixels"].shape[0] != len(samples):
        batch["frame_owner"] = torch.repeat_interleave(torch.arange(len(samples)),
                                                       torch.tensor([len(c) for c in clips]))
    return batch


def batches_per_epoch(n: int, batch_size: int, world_size: int = 1) -> int:
    """Full global batches in one pass (the last partial one is dropped)."""
    return n // (batch_size * world_size)


class ResumableBatchSampler(Sampler):
    """Endless per-rank batches of ``(pair, epoch)`` keys, starting after ``start`` batches.

    Epoch e is a permutation seeded by (seed, e); a global batch of ``batch_size * world_size`` is
    cut from it and rank r takes its contiguous slice. Everything is a function of the batch
    counter, so resuming only needs the number of batches already consumed.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 start: int = 0, shuffle: bool = True):
        self.per_epoch = batches_per_epoch(n, batch_size, world_size)
        if self.per_epoch == 0:
            raise ValueError(f"{n} training pairs are fewer than one global batch of "
                             f"{batch_size} x {world_size}; lower --batch-size")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world_size, self.start, self.shuffle = rank, world_size, start, shuffle

    def __len__(self) -> int:  # endless; DataLoader only needs a number
        return 2**62

    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        return torch.randperm(self.n, generator=generator).tolist()

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start
        epoch, order = -1, []
        global_batch = self.batch_size * self.world_size
        while True:
            e, b = divmod(step, self.per_epoch)
            if e != epoch:
                epoch, order = e, self._order(e)
            lo = b * global_batch + self.rank * self.batch_size
            yield [(i, epoch) for i in order[lo: lo + self.batch_size]]
            step += 1
