"""Captioned data in the formats people have, chosen by what ``--data`` points at.

    folder            sidecar captions: beach.jpg + beach.txt (images and videos, recursive)
    x.csv/.tsv/.jsonl manifest with path + caption columns, paths relative to the manifest
    x.json            COCO captions (images + annotations) or Karpathy (images with sentences + split)
    a/{000..009}.tar  WebDataset shards (also a single .tar or a folder of .tar), streamed
"""
from __future__ import annotations

from pathlib import Path

from trainer.data.datasets import PairDataset, ResumableBatchSampler, collate_pairs, load_frame, load_frames
from trainer.data.readers import DataSourceError, read_coco, read_manifest, read_sidecar_folder
from trainer.data.records import LoadReport, Record
from trainer.data.split import split_records
from trainer.data.webdataset import ShardStream, is_shard_spec, read_holdout

MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")

__all__ = [
    "DataSourceError", "LoadReport", "PairDataset", "Record", "ResumableBatchSampler", "ShardStream",
    "collate_pairs", "detect_format", "load_frame", "load_frames", "load_records", "split_records",
]


def detect_format(spec: str | Path) -> str:
    """'shards', 'manifest', 'coco' or 'folder'."""
    spec = str(spec)
    if is_shard_spec(spec):
        return "shards"
    path = Path(spec)
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise FileNotFoundError(f"--data {spec}: no such file or folder")
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        return "manifest"
    if path.suffix.lower() == ".json":
        return "coco"
    raise DataSourceError(f"--data {spec}: expected a folder, a .csv/.tsv/.jsonl manifest, a COCO .json, "
                          "or a .tar shard pattern")


def load_records(spec: str | Path, verify: bool = True, holdout: float = 0.0, seed: int = 0,
                 limit: int = 100_000) -> tuple[list[Record], LoadReport]:
    """Every usable record of a source and the report of what was skipped.

    For shards this reads only the held-out fraction ``holdout`` (up to ``limit``) into memory,
    since the training part is streamed by ``ShardStream``; ``holdout=0`` reads them all.
    """
    kind = detect_format(spec)
    report = LoadReport(source=str(spec))
    if kind == "folder":
        records = read_sidecar_folder(spec, report, verify)
    elif kind == "manifest":
        records = read_manifest(spec, report, verify)
    elif kind == "coco":
        records = read_coco(spec, report, verify)
    else:
        records = read_holdout(str(spec), holdout if holdout > 0 else 1.0, seed, limit, report)
    return records, report
