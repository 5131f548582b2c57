"""Typed training configuration: a file (YAML or TOML), then command-line overrides, then frozen.

The resolved config is written as ``train_config.yaml`` beside the checkpoints and read back by
``--resume``. Model hyper-parameters stay in ``cots_core.ModelConfig``; ``model`` here only holds
overrides of the chosen preset, e.g. ``{"loss": {"use_kl": False}}``.
"""
from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cots_core.model_folders import uses_clip_family_towers
from trainer.run_folders import resolve_model_dir

CONFIG_FILE = "train_config.yaml"


@dataclass
class DataConfig:
    train: str = ""  # folder, manifest, COCO json or shard pattern
    val: str | None = None  # explicit validation source; else held out from `train`
    val_fraction: float = 0.1
    val_split: str = "val"  # which split label to hold out when the source has labels (COCO/Karpathy)
    max_val_items: int = 1000
    frames: int = 8  # at most this many frames per video, at the times search samples it (one every 2 s)
    num_workers: int = 0
    augment: bool = True  # the model's train_transform; False: its eval preprocess
    verify: bool = True  # check every file before training (bad ones are skipped and counted)


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.02
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01  # cosine floor, as a fraction of lr
    clip_grad: float = 1.0  # max global grad norm; 0 disables
    # learning rate of the image and text towers as a fraction of `lr` (the rest: projections, the bridge);
    # 0 freezes the towers (no backward through them: a fine-tune of small data is then fast and stable)
    tower_lr_scale: float = 1.0


@dataclass
class TrainConfig:
    mode: str = "pretrain"  # pretrain | finetune | tokenizer
    preset: str = "tiny"
    init_from: str | None = None  # finetune: a checkpoint directory or a named model ("cots-lite")
    image_backbone: str | None = None  # timm model name (timm weights) or a local weights file
    text_backbone: str | None = None  # transformers folder or hub name
    tokenizer: str | None = None  # trained dVAE directory (`cots train tokenizer`)
    cache_tokens: bool = True  # with `tokenizer`: compute visual token ids once (disables augmentation)
    model: dict[str, Any] = field(default_factory=dict)
    out: str = "runs/cots"
    steps: int = 1000
    # when set, steps = epochs x batches per epoch of the training split (the fine-tune default), with a
    # validation pass after every epoch; RUN/best keeps the best one
    epochs: float | None = None
    batch_size: int = 32  # per rank, per micro-batch
    grad_accum: int = 1
    seed: int = 0
    precision: str = "auto"  # auto (bf16/fp16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    device: str = "auto"
    log_every: int = 10
    eval_every: int = 0  # 0: only at the end
    save_every: int = 500
    keep_checkpoints: int = 2
    progress: bool = True
    # finetune: remember the captioned items after training (trainer.caption_memory), if held-out agrees
    caption_memory: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["optim"]["betas"] = list(self.optim.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        _check_keys(cls, data, "")
        nested = {"data": DataConfig, "optim": OptimConfig}
        for key, sub in nested.items():
            if key in data:
                _check_keys(sub, data[key], f"{key}.")
                value = dict(data[key])
                if "betas" in value:
                    value["betas"] = tuple(value["betas"])
                data[key] = sub(**value)
        return cls(**data)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_FILE
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


def _check_keys(cls, data: Any, prefix: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"config section {prefix.rstrip('.') or 'root'} must be a mapping")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown config key(s) {', '.join(prefix + k for k in unknown)}; "
                         f"known: {', '.join(sorted(known))}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML (.yaml/.yml) or TOML (.toml) file as a nested dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        return tomllib.loads(text)
    return yaml.safe_load(text) or {}


def parse_value(text: str) -> Any:
    """A command-line value as YAML scalar: 'false' -> False, '1e-4' -> 1e-4, 'a,b' stays a string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


def set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    """``set_path(d, "model.loss.use_kl", False)``: create intermediate mappings as needed."""
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {dotted}: {key} is not a section")
    node[keys[-1]] = value


# The fine-tuning recipe (`cots train finetune` without tuning flags; chosen on the validation split of
# the benchmark in bench/quality_finetune.py, bench/RESULTS.md): frozen towers, the bridge and the
# projections at a high rate, a number of epochs rather than steps, the best epoch on held-out data.
# The task-level KL at a tenth of the paper's weight: at 1.0 it flattens both retrieval distributions and
# costs 3-6 rsum against MCL alone; at 0.1 it is neutral (bench/RESULTS.md, "Which objectives earn their place").
FINETUNE_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    "optim.lr": 3e-4,
    "optim.tower_lr_scale": 0.0,
    "optim.warmup_steps": 10,
    "data.val_fraction": 0.15,
    "model.loss.w_kl": 0.1,
}


# CLIP-family towers (cots_core.hf_checkpoints) start from a strong image-text alignment that a few hundred
# photos should nudge, not overwrite: the same recipe with the projections at CLIP fine-tuning's usual
# rate (1e-5, as FLYP and WiSE-FT), the starting model kept when no epoch beats it on held-out data
# (trainer.loop), and the caption memory for the person's own names. Not tuned here: no CLIP-class
# weights are available offline to tune them on (bench/RESULTS.md, "CLIP-family towers").
CLIP_FAMILY_FINETUNE_DEFAULTS: dict[str, Any] = {"optim.lr": 1e-5}


def _given(data: dict[str, Any], dotted: str) -> bool:
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def resolve_config(file: str | Path | None = None, overrides: dict[str, Any] | None = None,
                   sets: list[str] | None = None) -> TrainConfig:
    """Defaults (FINETUNE_DEFAULTS for a fine-tune) < config file < named overrides (dotted keys, None =
    not given) < ``--set key=value``. A fine-tune given ``steps`` runs that many steps instead of epochs."""
    data: dict[str, Any] = read_config_file(file) if file else {}
    for dotted, value in (overrides or {}).items():
        if value is not None:
            set_path(data, dotted, value)
    for item in sets or []:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        set_path(data, key.strip(), parse_value(value.strip()))
    if data.get("mode") == "finetune":
        recipe = dict(FINETUNE_DEFAULTS)
        if data.get("init_from") and uses_clip_family_towers(Path(resolve_model_dir(
                Path(str(data["init_from"])).expanduser()))):
            recipe.update(CLIP_FAMILY_FINETUNE_DEFAULTS)
        for dotted, value in recipe.items():
            if not _given(data, dotted) and not (dotted == "epochs" and _given(data, "steps")):
                set_path(data, dotted, value)
    return TrainConfig.from_dict(data)


def load_saved_config(directory: str | Path) -> TrainConfig:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} has no {CONFIG_FILE}: not a training run or checkpoint")
    return TrainConfig.from_dict(read_config_file(path))
