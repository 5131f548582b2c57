"""What a model folder holds, read from its config.json and file names (no torch: the CLI and the trainer's
config use it before any model is built)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from cots_core.clip_families import FAMILIES
from cots_core.errors import ModelLoadError
from cots_core.folder_safety import MAX_CONFIG_BYTES

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"
# model_type of a Hugging Face checkpoint whose towers cots loads (cots_core.hf_checkpoints)
CLIP_FAMILY_TYPES = tuple(FAMILIES)
# the tokenizer files a Hugging Face checkpoint needs at least one of (the others describe or extend it)
TOKENIZER_MODEL_FILES = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer.model")
PREPROCESSOR_FILE = "preprocessor_config.json"
# weights that only a pickle reader opens: never read (they can run code)
PICKLED_WEIGHTS = ("pytorch_model.bin", "model.pt", "model.pth", "open_clip_pytorch_model.bin", "tf_model.h5")
# transformers 5's CLIPProcessor/SiglipProcessor.save_pretrained writes this instead, the image processor nested
PROCESSOR_FILE = "processor_config.json"


def has_image_preprocessing(directory: Path) -> bool:
    """Whether a Hugging Face folder says how its images are prepared, in either shape (hf_checkpoints reads
    both)."""
    return (directory / PREPROCESSOR_FILE).is_file() or (directory / PROCESSOR_FILE).is_file()


def _config(directory: str | Path) -> dict | None:
    return read_small_json(Path(directory) / CONFIG_FILE)


def read_small_json(path: Path) -> dict | None:
    """A JSON object from a model folder's config-sized file; None when missing, too large or not an object."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def hf_model_type(directory: str | Path) -> str | None:
    """The ``model_type`` of a Hugging Face checkpoint folder (a COTS checkpoint's config has none), else None."""
    data = _config(directory)
    if data is None or "model_type" not in data:
        return None
    return str(data["model_type"])


def uses_clip_family_towers(directory: str | Path) -> bool:
    """True for a CLIP/SigLIP checkpoint folder, and for a COTS checkpoint built on such towers."""
    data = _config(directory)
    if data is None:
        return False
    if "model_type" in data:
        return data["model_type"] in CLIP_FAMILY_TYPES
    vision = data.get("vision")
    return isinstance(vision, dict) and vision.get("backend") == "transformers"


def read_json(path: Path, what: str) -> dict:
    """A JSON object from a model folder; ModelLoadError (saying ``what`` it is) when missing or not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ModelLoadError(f"{path.parent} has no {path.name} ({what})") from error
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path} is not valid JSON ({_first_line(error)})") from error
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is not a JSON object")
    return data


def weight_files(directory: Path) -> list[Path]:
    """A Hugging Face folder's safetensors files: ``model.safetensors``, or the shards its index names (each in
    the folder, each present). A folder with pickled weights only is refused: cots never unpickles code."""
    single = directory / WEIGHTS_FILE
    if single.is_file():
        return [single]
    index = directory / SHARD_INDEX
    if index.is_file():
        weight_map = read_json(index, "the shard index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise ModelLoadError(f"{index} has no weight_map")
        names = sorted(set(weight_map.values()))
        if any(not isinstance(n, str) or "/" in n or "\\" in n or not n.endswith(".safetensors") for n in names):
            raise ModelLoadError(f"{index} names files outside the folder or not in safetensors")
        missing = [n for n in names if not (directory / n).is_file()]
        if missing:
            raise ModelLoadError(f"{directory} is incomplete: {missing[0]} is missing (a half-finished download?)")
        return [directory / n for n in names]
    if any((directory / name).exists() for name in PICKLED_WEIGHTS):
        raise ModelLoadError(f"{directory} holds its weights only as a pickle (pytorch_model.bin): cots reads only "
                             "safetensors, which cannot run code; download the model's model.safetensors")
    raise ModelLoadError(f"{directory} has no {WEIGHTS_FILE}")


def checkpoint_name(directory: Path) -> str:
    """The model's name (its id's prefix): the folder's name, in safe characters."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", directory.resolve().name).strip("-.") or "model"
    return name[:64]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
