"""What a model folder holds, read from its config.json alone (no torch: the CLI and the trainer's config
use it before any model is built)."""
from __future__ import annotations

import json
from pathlib import Path

from cots_core.folder_safety import MAX_CONFIG_BYTES

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"
# model_type of a Hugging Face checkpoint whose towers cots loads (cots_core.hf_towers); SigLIP 2
# fixed-resolution checkpoints say "siglip" too
CLIP_FAMILY_TYPES = ("clip", "siglip")
# the tokenizer files a Hugging Face checkpoint needs at least one of (the others describe or extend it)
TOKENIZER_MODEL_FILES = ("tokenizer.json", "vocab.json", "spiece.model", "tokenizer.model")
PREPROCESSOR_FILE = "preprocessor_config.json"
# transformers 5's CLIPProcessor/SiglipProcessor.save_pretrained writes this instead, the image processor nested
PROCESSOR_FILE = "processor_config.json"


def has_image_preprocessing(directory: Path) -> bool:
    """Whether a Hugging Face folder says how its images are prepared, in either shape (hf_towers reads both)."""
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
