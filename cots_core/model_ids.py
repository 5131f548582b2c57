"""Stored model ids: a checkpoint's ``model_id`` (a hash of all its online weights) computed once, not at
every load.

The id is kept in the user data directory, keyed by the checkpoint folder and the size, mtime and ctime
of its ``config.json`` and ``model.safetensors``: rewriting either file (a new build, a fine-tune saved over it)
changes the key, and the id is computed again from the weights. A record that is not a small regular file
(a FIFO there made ``cots search`` hang) is deleted and written again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from cots_core.folder_safety import read_regular_file, remove_damaged
from cots_core.paths import data_dir

log = logging.getLogger(__name__)

CHECKPOINT_FILES = ("config.json", "model.safetensors")
MAX_RECORD_BYTES = 64 << 10  # a record is a few hundred bytes


def _key(directory: Path) -> dict | None:
    try:
        stats = {name: os.stat(directory / name) for name in CHECKPOINT_FILES}
    except OSError:
        return None
    return {"path": str(directory.resolve()),
            # ctime too: tools can set a file's mtime back (cp -p, rsync -t), never its ctime
            **{name: [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns] for name, stat in stats.items()}}


def _record_path(directory: Path) -> Path:
    digest = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:20]
    return data_dir() / "cache" / "model-ids" / f"{digest}.json"


def known_model_id(directory: str | Path) -> str | None:
    """The stored id of the checkpoint in ``directory``, or None if unknown or its files changed since."""
    directory = Path(directory)
    key = _key(directory)
    if key is None:
        return None
    path = _record_path(directory)
    try:
        record = json.loads(read_regular_file(path, MAX_RECORD_BYTES))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # damaged, or no file at all (a FIFO, a link): computed and written anew
        remove_damaged(path)
        return None
    if not isinstance(record, dict) or record.get("key") != key or not isinstance(record.get("model_id"), str):
        return None
    return record["model_id"]


def remember_model_id(directory: str | Path, model_id: str) -> None:
    """Store ``model_id`` for the checkpoint in ``directory`` (best effort: a read-only disk only costs time)."""
    directory = Path(directory)
    key = _key(directory)
    if key is None:
        return
    path = _record_path(directory)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        remove_damaged(temporary)  # written anew: opening a FIFO left there for writing would block
        temporary.write_text(json.dumps({"key": key, "model_id": model_id}))
        temporary.replace(path)
    except OSError as error:
        log.debug("cannot store the model id of %s (%s)", directory, error)
