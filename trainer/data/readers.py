"""Readers for the on-disk formats: sidecar folders, CSV/TSV/JSONL manifests, COCO captions JSON.

Each reader turns a source into ``Record`` objects and reports every row it had to drop in a
``LoadReport``; nothing here raises for a bad row, only for a source that cannot be read at all.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from cots_core.media import read_captions
from trainer.data.media import MediaError, check_media, media_kind
from trainer.data.records import (
    REASON_BAD_ROW,
    REASON_EMPTY_CAPTION,
    REASON_NO_CAPTION,
    LoadReport,
    Record,
    clean_caption,
    merge_by_path,
)

PATH_KEYS = ("path", "file", "filepath", "file_name", "filename", "image", "url")
CAPTION_KEYS = ("caption", "text", "captions", "sentence")


class DataSourceError(ValueError):
    """A data source that cannot be read at all (not a bad row inside it)."""


def finalize(raw: list[Record], report: LoadReport, verify: bool = True) -> list[Record]:
    """Clean captions, drop rows without a usable caption or file, merge rows of the same file."""
    kept: list[Record] = []
    for record in raw:
        if not record.captions:
            report.skip(REASON_NO_CAPTION, record.path)
            continue
        captions = [c for c in (clean_caption(c) for c in record.captions) if c]
        for _ in range(len(record.captions) - len(captions)):
            report.skip(REASON_EMPTY_CAPTION, record.path)
        if not captions:
            continue
        kept.append(Record(record.path, captions, record.kind, record.split, record.payload))
    records = merge_by_path(kept)
    if verify:
        good = []
        for record in records:
            try:
                check_media(record.path, record.kind)
            except MediaError as error:
                report.skip(error.reason, str(error).split(": ", 1)[-1])
                continue
            good.append(record)
        records = good
    report.count(records)
    return records


def read_sidecar_folder(root: str | Path, report: LoadReport, verify: bool = True) -> list[Record]:
    """Media files with sidecar captions (``cots_core.media.read_captions``: ``beach.jpg.txt``,
    ``beach.txt`` or ``.caption``, one caption per line; the convention the library indexes), recursively."""
    root = Path(root)
    raw: list[Record] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        kind = media_kind(path)
        if kind is None:
            continue
        captions = read_captions(path)
        if captions is None:
            report.skip(REASON_NO_CAPTION, str(path))
            continue
        # a sidecar with nothing but blank lines is one empty caption (counted as such)
        raw.append(Record(str(path.resolve()), captions or [""], kind))
    return finalize(raw, report, verify)


def _first(row: dict, keys: tuple[str, ...]):
    for key in keys:
        if key in row and row[key] not in (None, ""):
            return row[key]
    return None


def _row_record(row: dict, base: Path, report: LoadReport, where: str) -> Record | None:
    if not isinstance(row, dict):
        report.skip(REASON_BAD_ROW, where)
        return None
    row = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    path = _first(row, PATH_KEYS)
    if path is None:
        report.skip(REASON_BAD_ROW, f"{where}: no path column")
        return None
    if not any(key in row for key in CAPTION_KEYS):
        report.skip(REASON_BAD_ROW, f"{where}: no caption column")
        return None
    captions = _first(row, CAPTION_KEYS)
    captions = captions if isinstance(captions, list) else [captions if captions is not None else ""]
    full = Path(str(path)).expanduser()
    full = full if full.is_absolute() else base / full
    kind = media_kind(full)
    if kind is None:
        report.skip("unsupported file type", str(full))
        return None
    split = row.get("split")
    return Record(str(full.resolve()), [c for c in captions if c is not None], kind,
                  str(split) if split else None)


def read_manifest(path: str | Path, report: LoadReport, verify: bool = True) -> list[Record]:
    """CSV/TSV (header row) or JSONL with ``path`` and ``caption`` columns; paths relative to the file.

    Several rows may name the same file (several captions); a ``split`` column is honoured.
    """
    path = Path(path)
    base = path.parent
    raw: list[Record] = []
    suffix = path.suffix.lower()
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        if suffix in (".jsonl", ".ndjson"):
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    report.skip(REASON_BAD_ROW, f"{path.name} line {n}: not JSON")
                    continue
                record = _row_record(row, base, report, f"{path.name} line {n}")
                if record:
                    raw.append(record)
        else:
            delimiter = "\t" if suffix == ".tsv" else ","
            reader = csv.DictReader(f, delimiter=delimiter)
            if not reader.fieldnames or not set(k.strip().lower() for k in reader.fieldnames) & set(PATH_KEYS):
                raise DataSourceError(f"{path}: expected a header row with a 'path' and a 'caption' column, "
                                      f"found {reader.fieldnames}")
            for n, row in enumerate(reader, 2):
                record = _row_record(row, base, report, f"{path.name} line {n}")
                if record:
                    raw.append(record)
    return finalize(raw, report, verify)


def read_coco(path: str | Path, report: LoadReport, verify: bool = True,
              image_root: str | Path | None = None) -> list[Record]:
    """COCO captions (``images`` + ``annotations``) or the Karpathy form (``images`` with ``sentences``,
    ``filepath``, ``split``). Image paths are relative to ``image_root`` (default: the JSON's folder)."""
    path = Path(path)
    root = Path(image_root) if image_root else path.parent
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DataSourceError(f"{path}: not a readable COCO captions JSON ({error})") from error
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataSourceError(f"{path}: a COCO captions JSON needs an 'images' list")

    def image_path(entry: dict) -> Path:
        name = entry.get("file_name") or entry.get("filename") or ""
        return root / entry.get("filepath", "") / name

    raw: list[Record] = []
    if "annotations" in data:
        by_id: dict = {}
        for entry in data["images"]:
            if not isinstance(entry, dict) or "id" not in entry:
                report.skip(REASON_BAD_ROW, f"{path.name}: image entry without id")
                continue
            by_id[entry["id"]] = Record(str(image_path(entry).resolve()), [], "image", entry.get("split"))
        for ann in data["annotations"]:
            record = by_id.get(ann.get("image_id")) if isinstance(ann, dict) else None
            if record is None:
                report.skip(REASON_BAD_ROW, f"{path.name}: caption for an unknown image id")
                continue
            record.captions.append(ann.get("caption") or "")
        raw = list(by_id.values())
    else:  # Karpathy: sentences inline
        for entry in data["images"]:
            if not isinstance(entry, dict):
                report.skip(REASON_BAD_ROW, f"{path.name}: image entry is not an object")
                continue
            sentences = entry.get("sentences") or []
            captions = [s.get("raw", "") if isinstance(s, dict) else str(s) for s in sentences]
            raw.append(Record(str(image_path(entry).resolve()), captions, "image", entry.get("split")))
    return finalize(raw, report, verify)
