"""The models a person can choose from: built in, downloaded from the hub, trained here; and how fast
each ran on this machine's CPU when measured (``cots models --measure``).

Listing reads folders and config.json files only (no torch, no weights, no network): a broken folder is
one row that says so, never the end of the list.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cots_core import clip_families, hub
from cots_core.errors import CotsError
from cots_core.folder_safety import MAX_CONFIG_BYTES, read_regular_file, remove_damaged, require_regular_file
from cots_core.paths import data_dir

# cots_core.loading.BUILT_IN_MODELS, named here so that a listing does not import torch (a test keeps them equal)
BUILT_IN = {"cots-lite": "cots-lite"}  # name -> its cache folder under data_dir()/models
KIND_BUILT_IN, KIND_DOWNLOADED, KIND_TRAINED = "built in", "downloaded", "trained here"
SPEED_FILE = "model-speed.json"
MAX_SPEEDS_BYTES = 1 << 20  # a few hundred bytes per model measured


@dataclass
class ModelEntry:
    source: str  # what --model takes: a name, a hub id or a folder
    kind: str
    path: str | None = None
    size_bytes: int | None = None
    embed_dim: int | None = None
    unreadable: str | None = None  # why its config.json could not be read
    images_per_s: float | None = None
    text_ms: float | None = None

    @property
    def label(self) -> str:
        """Short name for a menu or a table: the hub id or name, a trained folder's own name."""
        return Path(self.source).name if self.kind == KIND_TRAINED else self.source

    def to_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


def models_dir() -> Path:
    return data_dir() / "models"


def list_models() -> list[ModelEntry]:
    """Every model this machine can use now, built in first, then downloaded, then trained here."""
    speeds = read_speeds()
    entries = [_built_in(name, folder) for name, folder in BUILT_IN.items()]
    entries += [_entry(_hub_id(folder), KIND_DOWNLOADED, folder) for folder in _subfolders(hub.hub_models_dir())]
    skip = {"hub", *BUILT_IN.values()}
    entries += [_entry(str(folder), KIND_TRAINED, folder) for folder in _subfolders(models_dir())
                if folder.name not in skip and (folder.name.startswith("finetuned-") or (folder / "config.json").exists())]
    for entry in entries:
        speed = speeds.get(entry.source)
        if speed and speed.get("signature") == weights_signature(entry.path):
            entry.images_per_s, entry.text_ms = speed.get("images_per_s"), speed.get("text_ms")
    return entries


def _subfolders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _hub_id(folder: Path) -> str:
    """The repo a downloaded folder came from (its record), else its folder name read back."""
    try:
        record = json.loads((folder / hub.DOWNLOAD_RECORD).read_text())
        if isinstance(record, dict) and hub.folder_name(str(record.get("repo_id"))) == folder.name:
            return record["repo_id"]
    except (OSError, ValueError):
        pass
    return folder.name.replace("--", "/", 1)


def _built_in(name: str, folder_name: str) -> ModelEntry:
    folder = models_dir() / folder_name
    if not (folder / "config.json").is_file():  # not built yet: the first use builds it
        return ModelEntry(name, KIND_BUILT_IN)
    return _entry(name, KIND_BUILT_IN, folder)


def _entry(source: str, kind: str, folder: Path) -> ModelEntry:
    entry = ModelEntry(source, kind, str(folder), size_bytes=folder_size(folder))
    try:
        entry.embed_dim = embedding_width(read_config(folder / "config.json"))
    except (CotsError, OSError, ValueError, RecursionError) as error:
        entry.unreadable = str(error).splitlines()[0] if str(error) else type(error).__name__
    return entry


def read_config(path: Path) -> dict:
    require_regular_file(path, "model config")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path} is too large for a config")
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def embedding_width(config: dict) -> int | None:
    """The width of the shared image-text space, from config.json alone (a CLIP-family checkpoint: its
    ``clip_families`` row, transformers' defaults where a field is left out)."""
    if "model_type" in config:
        width = clip_families.embedding_width(config)
    else:
        width = config.get("embed_dim")  # a COTS checkpoint
    if not isinstance(width, int) or isinstance(width, bool) or width <= 0:
        raise ValueError(f"config.json gives no embedding width ({width!r})")
    return width


def folder_size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


# -- measured speed -----------------------------------------------------------------------------


def weights_signature(folder: str | None) -> list | None:
    """Size and mtime of a folder's weights: a record measured before a re-download or retraining is stale."""
    if folder is None:
        return None
    try:
        return sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in Path(folder).glob("*.safetensors"))
    except OSError:
        return None


def _speed_path() -> Path:
    return data_dir() / SPEED_FILE


def read_speeds() -> dict:
    try:
        data = json.loads(read_regular_file(_speed_path(), MAX_SPEEDS_BYTES))
    except (OSError, ValueError):  # missing, damaged, or no plain file (a FIFO would block the read)
        return {}
    return data if isinstance(data, dict) else {}


def record_speed(entry: ModelEntry, images_per_s: float, text_ms: float, model_id: str | None) -> None:
    speeds = read_speeds()
    speeds[entry.source] = {"images_per_s": images_per_s, "text_ms": text_ms, "model_id": model_id,
                            "threads": os.cpu_count(), "measured": time.strftime("%Y-%m-%dT%H:%M:%S"),
                            "signature": weights_signature(entry.path)}
    path = _speed_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    remove_damaged(temporary)
    temporary.write_text(json.dumps(speeds, indent=1))
    temporary.replace(path)


def measure_speed(source: str, seconds: float = 2.0, batch: int = 8) -> tuple[float, float, str | None]:
    """(images per second, one text query in ms, model id) on the CPU, as indexing and search run it."""
    import torch

    from app.library.encoder import Encoder

    encoder = Encoder.load(source, device="cpu")
    encoder.prepare_images()  # the runtime indexing would use (ONNX Runtime where available)
    pixels = torch.rand(batch, 3, encoder.image_size, encoder.image_size)
    query = ["a dog running on the beach"]
    encoder.encode_images(pixels)  # warm-up: first calls allocate and pick kernels
    encoder.encode_texts(query)
    images, started = 0, time.perf_counter()
    while images == 0 or time.perf_counter() - started < seconds:
        encoder.encode_images(pixels)
        images += batch
    images_per_s = images / (time.perf_counter() - started)
    timings = []
    deadline = time.perf_counter() + seconds / 2
    while not timings or (time.perf_counter() < deadline and len(timings) < 50):
        start = time.perf_counter()
        encoder.encode_texts(query)
        timings.append((time.perf_counter() - start) * 1000)
    return images_per_s, sorted(timings)[len(timings) // 2], getattr(encoder.model, "model_id", None)
