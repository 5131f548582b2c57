"""Model folders are data, never code: what every load from a folder or a hub name goes through.

Model folders are what people share (``--model``, ``train --from``, a library's remembered model).
transformers would import Python from a folder whose config has an ``auto_map`` (after a y/N prompt
on a terminal); cots refuses such folders outright, passes ``trust_remote_code=False`` everywhere,
and reads nothing that is not a regular file (a FIFO would block the read forever).

The files cots keeps itself (the ONNX graphs and their manifest, stored model ids, thumbnails) are read through
``read_regular_file`` alone: plain files of a bounded size, opened without following a symlink or waiting on
a FIFO; whatever fails that is deleted (``remove_damaged``) and made again.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cots_core.errors import ModelLoadError

# The files through which transformers finds custom code.
MAX_CONFIG_BYTES = 16 << 20  # configs are a few KB; never read a huge one into memory
_CODE_HOOK_FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json")


def hub_options(local_only: bool) -> dict:
    """Keyword arguments for every transformers ``from_pretrained``: never run code, and never go to the
    network unless the caller builds from a hub name on purpose (a training preset)."""
    return {"trust_remote_code": False, "local_files_only": local_only}


def cached_hub_snapshot(repo_id: str, filename: str = "tokenizer_config.json") -> Path | None:
    """The local copy of a hub model in the Hugging Face cache, found without any network access
    (``local_files_only`` alone still lets huggingface_hub open connections), or None."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # noqa: BLE001 - an odd name is simply not in the cache
        return None
    return Path(found).parent if isinstance(found, str) else None


def require_regular_file(path: str | Path, what: str = "file") -> None:
    """ModelLoadError unless ``path`` is missing or a regular file (checked without opening it)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise ModelLoadError(f"cannot read the {what} {path}: {error.strerror or error}") from error
    if not stat.S_ISREG(mode):
        raise ModelLoadError(f"the {what} {path} is not a regular file (a pipe, socket or device): "
                             "a model folder holds plain files only")


class NotARegularFile(OSError):
    """What ``read_regular_file`` raises for anything but a plain file of a sane size: an OSError, so that
    code which treats an unreadable cache entry as missing treats this one alike."""


# O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer; O_NOFOLLOW: a
# symlink as the last component fails to open (ELOOP); both absent on Windows, where FIFOs are no files.
_SAFE_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
                    | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def read_regular_file(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of ``path`` if it is a regular file (not a symlink, FIFO, socket or device) of at most
    ``max_bytes``; ``NotARegularFile`` (an OSError) otherwise, ``FileNotFoundError`` and the like as ``open``.

    For the files cots keeps itself (caches, manifests, thumbnails): they are plain files it wrote, so anything
    else there is damage or a trap (``image.onnx -> /dev/zero`` grew memory without bound; a FIFO blocked the
    read forever). Never blocks: the file type is checked on the opened descriptor, which was opened without
    waiting for a FIFO's writer; the read is bounded even when the size lies (procfs)."""
    try:
        descriptor = os.open(path, _SAFE_OPEN_FLAGS)
    except OSError as error:
        if os.path.islink(path):  # O_NOFOLLOW's ELOOP: the link may point anywhere (/dev/zero, /proc/...)
            raise NotARegularFile(f"{path} is a symbolic link, not a file cots wrote") from error
        raise
    with os.fdopen(descriptor, "rb", buffering=0) as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(f"{path} is not a regular file (a pipe, socket or device)")
        if info.st_size > max_bytes:
            raise NotARegularFile(f"{path} is {info.st_size:,} bytes, over the limit of {max_bytes:,}")
        data = handle.read(info.st_size + 1) or b""  # one read, one buffer (a graph may be a GB)
        while len(data) <= max_bytes:  # the file grew, or its size said 0
            more = handle.read(max_bytes + 1 - len(data))
            if not more:
                break
            data += more
    if len(data) > max_bytes:
        raise NotARegularFile(f"{path} holds more than {max_bytes:,} bytes")
    return data


def remove_damaged(path: str | Path) -> None:
    """Delete a cache entry that failed its check (a FIFO, a symlink, a bad file) so that it is made anew;
    quiet when it cannot be (a folder in its place, a read-only disk: the entry is then simply not used)."""
    try:
        os.unlink(path)
    except OSError:
        pass


def refuse_auto_map(data: dict, source: str | Path) -> None:
    """ModelLoadError when a config asks transformers to import code (``auto_map``)."""
    if isinstance(data, dict) and "auto_map" in data:
        raise ModelLoadError(f"{source} asks to run Python code from the model folder (auto_map); cots never "
                             "runs code from a model: use a model saved by cots or a standard architecture")


def check_model_folder(folder: str | Path) -> None:
    """Refuse a folder with non-regular files or configs that point transformers at custom code."""
    folder = Path(folder)
    for directory in (folder, folder / "tokenizer"):
        if not directory.is_dir():
            continue
        try:
            entries = list(os.scandir(directory))
        except OSError as error:
            raise ModelLoadError(f"cannot read the model folder {directory}: {error.strerror or error}") from error
        for entry in entries:
            if entry.is_dir():
                continue
            require_regular_file(entry.path, "model file")
            if entry.name in _CODE_HOOK_FILES:
                if entry.stat().st_size > MAX_CONFIG_BYTES:
                    raise ModelLoadError(f"{entry.path} is too large for a model config "
                                         f"({entry.stat().st_size / 2**20:,.0f} MiB)")
                try:
                    data = json.loads(Path(entry.path).read_text(encoding="utf-8"))
                except (OSError, ValueError) as error:
                    raise ModelLoadError(f"{entry.path} is not valid JSON ({error})") from error
                refuse_auto_map(data, entry.path)
