"""The per-model ONNX cache both graphs live in (``image_runtime``: the image path; ``text_graph``: the text
path), without torch: where a model's folder is, its manifests, and an ONNX Runtime session.

``<data dir>/models/onnx/<model id>/`` holds each graph with its own manifest (the graph's SHA-256, and what was
checked). Every file there is read only as a regular file of a bounded size (``read_regular_file``: no symlink,
no FIFO) and written through a fresh staging file, so a damaged entry is made anew rather than followed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path

from cots_core.folder_safety import NotARegularFile, read_regular_file
from cots_core.paths import data_dir

MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few hundred bytes
MAX_GRAPH_BYTES = 2 << 30  # protobuf's own limit: a graph saved without external data is under 2 GiB


def onnx_cache_root() -> Path:
    return data_dir() / "models" / "onnx"


def model_folder(model_id: str, root: Path | None = None) -> Path:
    """The cache folder of ``model_id`` (any character a file name cannot hold made ``_``)."""
    return (root or onnx_cache_root()) / re.sub(r"[^A-Za-z0-9._-]", "_", model_id)


def write_manifest(folder: Path, name: str, manifest: dict) -> None:
    """Atomically, through a fresh staging file (a fixed staging name could be a FIFO, and block the write)."""
    write_file(folder / name, (json.dumps(manifest, indent=1) + "\n").encode())


def write_file(path: Path, data: bytes) -> None:
    """``data`` to ``path`` atomically, through a fresh staging file beside it."""
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)


def read_manifest(folder: Path, name: str) -> dict | None:
    """The manifest ``name`` of ``folder`` as a dict, or None when missing, unreadable or not a JSON object."""
    try:
        manifest = json.loads(read_regular_file(folder / name, MAX_MANIFEST_BYTES))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def regular_file_sha256(path: Path, max_bytes: int) -> str:
    """SHA-256 of ``path``, read in chunks, if it is a regular file of at most ``max_bytes`` (``NotARegularFile``,
    an OSError, otherwise): for files too large to hold in memory at once."""
    digest = hashlib.sha256()
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            raise NotARegularFile(f"{path} is not a regular file of at most {max_bytes} bytes")
        while chunk := stream.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def file_stamp(path: Path) -> dict | None:
    """What identifies the bytes of a regular file without reading them: size, inode, modification and change
    times (a rewrite, a replacement or ``touch`` changes the change time, which no program can set back). None
    for anything but a regular file."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return {"size": info.st_size, "ino": info.st_ino, "mtime_ns": info.st_mtime_ns, "ctime_ns": info.st_ctime_ns}


def session(graph: bytes | Path, threads: int):
    """An ONNX Runtime CPU session over ``graph``: bytes, or the path of a file whose bytes were checked (a graph
    cots wrote names no external data files to be read from elsewhere)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle threads sleep instead of spinning: on a shared CPU spinning costs everyone (cf. OMP_WAIT_POLICY)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph if isinstance(graph, bytes) else str(graph), options,
                                providers=["CPUExecutionProvider"])
