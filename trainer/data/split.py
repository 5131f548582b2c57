"""Train/validation split by item (image or video), never by caption, never overlapping."""
from __future__ import annotations

import random

from trainer.data.records import REASON_OVERLAP, LoadReport, Record

TRAIN_SPLITS = ("train", "restval")


def holdout_split(records: list[Record], val_fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Seeded held-out fraction of the items (at least one when the fraction is positive)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError("the validation fraction must be in [0, 1)")
    paths = sorted({r.path for r in records})
    n_val = min(len(paths) - 1, max(1, round(val_fraction * len(paths)))) if val_fraction > 0 else 0
    val_paths = set(random.Random(seed).sample(paths, n_val)) if n_val > 0 else set()
    return [r for r in records if r.path not in val_paths], [r for r in records if r.path in val_paths]


def named_split(records: list[Record], val_split: str = "val") -> tuple[list[Record], list[Record]]:
    """Use the source's own split labels (COCO/Karpathy): train+restval for training, ``val_split`` held out."""
    return ([r for r in records if r.split in TRAIN_SPLITS],
            [r for r in records if r.split == val_split])


def split_records(records: list[Record], val_records: list[Record] | None = None, val_fraction: float = 0.0,
                  seed: int = 0, val_split: str = "val",
                  report: LoadReport | None = None) -> tuple[list[Record], list[Record]]:
    """Explicit validation records win; then split labels from the source; then a seeded fraction.

    With explicit validation records, training items that also appear there are dropped (and counted).
    """
    if val_records is not None:
        val_paths = {r.path for r in val_records}
        train = []
        for record in records:
            if record.path in val_paths:
                if report is not None:
                    report.skip(REASON_OVERLAP, record.path)
                continue
            train.append(record)
        return train, val_records
    if any(r.split for r in records):
        train, val = named_split(records, val_split)
        if train:
            return train, val
    return holdout_split(records, val_fraction, seed)
