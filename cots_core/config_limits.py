"""Bounds on what a model folder may ask for, checked before anything is built or fetched.

A model is built from its config before a weight is read, so a config is a recipe for memory: with
``num_hidden_layers: 1000000`` the build grew without bound, ``hidden_size: 1e9`` and ``image_size: 1e6``
ended in internal errors, and a timm name such as ``hf-hub:someone/model`` made timm go to the network
(issue 21). Here a config is checked three ways, all before the build:

- every number in it is finite and small (``MAX_ANY_NUMBER``), every size has the type and range of
  ``SIZE_LIMITS`` / ``HF_SIZE_LIMITS`` / ``TIMM_SIZE_LIMITS``;
- the towers' sizes agree with the weights' own shapes, read from the safetensors header (metadata
  only): ``check_tower_sizes`` (generic over Hugging Face configs: BERT, CLIP, SigLIP...);
- a timm model name or option that would fetch anything is refused (``check_offline_vision``).

Tokenizer files have a size limit too (``check_tokenizer_files``).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from cots_core.errors import ModelLoadError

MAX_ANY_NUMBER = 1e8  # no number in a model config is near this (the largest real one: a 250k vocabulary)
# (section, key) -> (least, most) for sizes of the cots config itself
SIZE_LIMITS: dict[tuple[str, str], tuple[int, int]] = {
    ("", "image_size"): (16, 1024),  # the largest public towers take 384-560 px
    ("", "embed_dim"): (1, 8192),
    ("vision", "num_classes"): (1, 100_000),
    ("vision", "caption_memory"): (0, 10_000_000),
    ("text", "max_length"): (1, 8192),
    ("queue", "size"): (1, 1 << 20),
    ("tokenizer", "vocab_size"): (1, 1 << 17),
    ("tokenizer", "hidden_dim"): (1, 4096),
    ("tokenizer", "codebook_dim"): (1, 4096),
}
# Hugging Face config keys (text.hf_config; the same names in CLIP/SigLIP text and vision configs)
HF_SIZE_LIMITS: dict[str, tuple[int, int]] = {
    "hidden_size": (1, 16384), "num_hidden_layers": (1, 256), "num_attention_heads": (1, 512),
    "intermediate_size": (1, 131072), "vocab_size": (1, 1 << 20), "max_position_embeddings": (1, 1 << 16),
    "type_vocab_size": (1, 1024), "image_size": (16, 1024), "patch_size": (1, 1024), "projection_dim": (1, 16384),
    "num_channels": (1, 16),
}
# timm model_kwargs
TIMM_SIZE_LIMITS: dict[str, tuple[int, int]] = {
    "img_size": (16, 1024), "patch_size": (1, 1024), "embed_dim": (1, 16384), "depth": (1, 256),
    "num_heads": (1, 512), "in_chans": (1, 16), "num_classes": (0, 100_000),
}
MAX_TOKENIZER_BYTES = 64 << 20  # tokenizer.json of a 250k-word multilingual vocabulary is ~17 MB
# timm names with these prefixes (or a "/") load a config or weights from the hub, a URL or a folder
_FETCHING_PREFIXES = ("hf-hub:", "hf_hub:", "local-dir:", "http:", "https:", "file:", "timm/")
_FETCHING_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "pretrained_cfg_overlay", "checkpoint_path",
                    "cache_dir", "pretrained_strict")


def _numbers(data: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(data, Mapping):
        for key, value in data.items():
            yield from _numbers(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            yield from _numbers(value, f"{path}[{i}]")
    elif isinstance(data, int | float) and not isinstance(data, bool):
        yield path, data


def _check_size(where: str, value: Any, least: int, most: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelLoadError(f"{where} must be a whole number, not {value!r}")
    if not least <= value <= most:
        raise ModelLoadError(f"{where} = {value:,} is out of range (from {least:,} to {most:,})")


def check_sizes(data: Mapping, source: str, limits: Mapping[str, tuple[int, int]]) -> None:
    """ModelLoadError when a key of ``limits`` present in ``data`` is not a whole number in its range."""
    for key, (least, most) in limits.items():
        if key in data and data[key] is not None:
            _check_size(f"{source}: {key}", data[key], least, most)


def check_config_limits(config: Mapping, source: str | Path) -> None:
    """Every number finite and small, every size in range; ``config`` is a ``ModelConfig.to_dict()``."""
    for where, value in _numbers(config):
        if not math.isfinite(value) or abs(value) > MAX_ANY_NUMBER:
            raise ModelLoadError(f"{source}: {where} = {value!r} is not a sane model setting")
    for (section, key), (least, most) in SIZE_LIMITS.items():
        part = config.get(section) if section else config
        if isinstance(part, Mapping) and key in part:
            _check_size(f"{source}: {section + '.' if section else ''}{key}", part[key], least, most)
    text, vision = config.get("text") or {}, config.get("vision") or {}
    check_sizes(text.get("hf_config") or {}, f"{source}: text.hf_config", HF_SIZE_LIMITS)
    check_sizes(vision.get("model_kwargs") or {}, f"{source}: vision.model_kwargs", TIMM_SIZE_LIMITS)


def check_offline_vision(vision: Mapping, source: str | Path) -> None:
    """Refuse a timm model name or option that would load anything from the hub, a URL or another folder:
    a model folder carries its weights, and loading one never goes to the network."""
    name = vision.get("model_name")
    if not isinstance(name, str) or not name:
        raise ModelLoadError(f"{source}: vision.model_name must name a timm architecture")
    if name.lower().startswith(_FETCHING_PREFIXES) or "/" in name or ":" in name:
        raise ModelLoadError(f"{source}: vision.model_name {name!r} would be fetched from elsewhere; a model folder "
                             "names a plain timm architecture (e.g. vit_base_patch16_224) and carries its weights")
    fetching = [key for key in _FETCHING_KWARGS if key in (vision.get("model_kwargs") or {})]
    if fetching:
        raise ModelLoadError(f"{source}: vision.model_kwargs {', '.join(fetching)} would make timm load from "
                             "elsewhere; a model folder carries its weights")


def weight_shapes(weights: str | Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a safetensors file, from its header only (nothing is loaded)."""
    from safetensors import safe_open

    if not Path(weights).is_file():
        raise ModelLoadError(f"weights file not found: {weights}")
    try:
        with safe_open(str(weights), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118
    except Exception as error:  # noqa: BLE001 - a missing, cut or foreign file: one message
        raise ModelLoadError(f"cannot read the weights file {weights}: {error}") from error


_LAYER_INDEX = re.compile(r"\.(?:layer|layers|blocks|h)\.(\d+)\.")


def check_tower_sizes(sizes: Mapping, weights: str | Path | Mapping[str, tuple[int, ...]], prefix: str,
                      source: str | Path, layers_key: str = "num_hidden_layers",
                      size_keys: tuple[str, ...] = ("hidden_size", "intermediate_size", "vocab_size",
                                                    "max_position_embeddings")) -> None:
    """ModelLoadError unless a tower's config ``sizes`` fit the weights under ``prefix``.

    Generic over architectures (BERT ``encoder.layer.N``, CLIP/SigLIP ``encoder.layers.N``, timm ``blocks.N``):
    the number of layers (``layers_key``) must equal the count of distinct layer indices in the weights'
    names, and each of ``size_keys`` present in ``sizes`` must be a dimension of some tensor of the tower.
    ``weights``: a safetensors path, or its ``weight_shapes``. Nothing is checked when no weight has the
    prefix (a tower built from a preset, not loaded)."""
    shapes = weight_shapes(weights) if not isinstance(weights, Mapping) else weights
    tower = {name: shape for name, shape in shapes.items() if name.startswith(prefix)}
    if not tower:
        return
    layers = {int(match.group(1)) for name in tower if (match := _LAYER_INDEX.search(name[len(prefix) - 1:]))}
    declared = sizes.get(layers_key)
    if declared is not None and layers and declared != len(layers):
        raise ModelLoadError(f"{source}: {layers_key} = {declared!r}, but the weights hold {len(layers)} layers")
    dimensions = {dim for shape in tower.values() for dim in shape}
    for key in size_keys:
        value = sizes.get(key)
        if value is not None and value not in dimensions:
            raise ModelLoadError(f"{source}: {key} = {value!r} fits no weight of the model ({prefix.rstrip('.')})")


def check_tokenizer_files(folder: str | Path) -> None:
    """ModelLoadError when a tokenizer file is larger than any real one (it is read whole)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_file() and path.stat().st_size > MAX_TOKENIZER_BYTES:
            raise ModelLoadError(f"{path} is {path.stat().st_size / 2**20:,.0f} MiB, too large for a tokenizer file "
                                 f"(at most {MAX_TOKENIZER_BYTES >> 20} MiB)")


def check_model_config(config: Mapping, directory: str | Path, weights: str | Path) -> None:
    """All of the above for a cots model folder (``config``: its ``ModelConfig.to_dict()``), before the
    model is built: limits, no fetching, tower sizes against ``weights``, tokenizer files."""
    source = Path(directory) / "config.json"
    check_config_limits(config, source)
    check_offline_vision(config.get("vision") or {}, source)
    shapes = weight_shapes(weights)
    text = config.get("text") or {}
    check_tower_sizes(text.get("hf_config") or {}, shapes, "text_encoder.", f"{source}: text.hf_config")
    vision = config.get("vision") or {}
    if vision.get("backend") == "transformers":  # a CLIP-family vision tower (cots_core.hf_checkpoints)
        check_sizes(vision.get("hf_config") or {}, f"{source}: vision.hf_config", HF_SIZE_LIMITS)
        check_tower_sizes(vision.get("hf_config") or {}, shapes, "image_encoder.", f"{source}: vision.hf_config",
                          size_keys=("hidden_size", "intermediate_size"))
    kwargs = vision.get("model_kwargs") or {}
    check_tower_sizes(kwargs, shapes, "image_encoder.", f"{source}: vision.model_kwargs", layers_key="depth",
                      size_keys=("embed_dim",))
    check_tokenizer_files(Path(directory) / "tokenizer")


def check_hf_checkpoint(config: Mapping, weights: list[Path], source: str | Path) -> None:
    """The same for a Hugging Face CLIP/SigLIP folder (its own config.json, weights in one or more files),
    before its towers are built."""
    for where, value in _numbers(config):
        if not math.isfinite(value) or abs(value) > MAX_ANY_NUMBER:
            raise ModelLoadError(f"{source}: {where} = {value!r} is not a sane model setting")
    check_sizes(config, str(source), HF_SIZE_LIMITS)
    shapes: dict[str, tuple[int, ...]] = {}
    for path in weights:
        shapes.update(weight_shapes(path))
    for key, prefix in (("text_config", "text_model."), ("vision_config", "vision_model.")):
        tower = config.get(key) or {}
        if isinstance(tower, Mapping):
            check_sizes(tower, f"{source}: {key}", HF_SIZE_LIMITS)
            check_tower_sizes(tower, shapes, prefix, f"{source}: {key}",
                              size_keys=("hidden_size", "intermediate_size"))
