"""Hugging Face CLIP-family checkpoints as COTS models: a ``CLIPModel`` or ``SiglipModel`` folder loads as a COTS
model whose embeddings equal transformers' own (``get_image_features``/``get_text_features``).

A CLIP-family checkpoint is exactly what COTS is made of: two separate streams, each with a projection into
one space, compared by a dot product. The vision tower becomes ``encoders.HFVisionEncoder``, the text tower the
usual ``encoders.HFTextEncoder`` with its own pooling (``pooling="pooler"``), and the projections COTS's
projections. What differs between the families is data: ``cots_core.clip_families.FAMILIES``.

The folder is data only: its config and weights are read, never code (``auto_map`` is refused, every
architecture is built from the config dict by transformers' own classes), and nothing goes to the network.
Which COTS objectives apply to these towers is said in ``import_config``. The loading layer
(``cots_core.loading``) decides when a folder is one of these.
"""
from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from cots_core.clip_families import FAMILIES, ClipFamily, family_of_vision_type
from cots_core.config import (
    TEMPERATURE_RANGE,
    LossConfig,
    ModelConfig,
    QueueConfig,
    TextConfig,
    TokenizerConfig,
    VisionConfig,
)
from cots_core.config_limits import check_hf_checkpoint
from cots_core.encoders import HFTextEncoder, first_line, load_text_tokenizer, tokenize_texts
from cots_core.errors import ModelLoadError
from cots_core.folder_safety import check_model_folder, hub_options, refuse_auto_map
from cots_core.heads import linear_projection
from cots_core.model_folders import (
    CONFIG_FILE,
    PREPROCESSOR_FILE,
    PROCESSOR_FILE,
    TOKENIZER_MODEL_FILES,
    WEIGHTS_FILE,
    checkpoint_name,
    hf_model_type,
    read_json,
    weight_files,
)
from cots_core.text_query import TextQueryModel

if TYPE_CHECKING:
    from cots_core.model import COTS

# PIL resample codes in preprocessor configs
_RESAMPLE = {2: "bilinear", 3: "bicubic", 0: "nearest"}


def clip_family(config: ModelConfig) -> str | None:
    """"clip" or "siglip" for a model built on towers imported by this module (``import_config``), else None."""
    if config.vision.backend != "transformers":
        return None
    family = family_of_vision_type(config.vision.model_name)
    return family.name if family is not None else None


# ------------------------------------------------------------------------------------- folder detection
def read_image_preprocessing(directory: Path) -> dict:
    """The image processor's settings: ``preprocessor_config.json`` (transformers 4, and the hub's folders), or
    the ``image_processor`` inside ``processor_config.json`` (what transformers 5's processors save)."""
    if (directory / PREPROCESSOR_FILE).is_file():
        return read_json(directory / PREPROCESSOR_FILE, "the image preprocessing")
    if (directory / PROCESSOR_FILE).is_file():
        nested = read_json(directory / PROCESSOR_FILE, "the processor").get("image_processor")
        if isinstance(nested, dict):
            return nested
        raise ModelLoadError(f"{directory / PROCESSOR_FILE} has no image_processor: save the processor with the model")
    raise ModelLoadError(f"{directory} has neither {PREPROCESSOR_FILE} nor {PROCESSOR_FILE}: save the processor "
                         "with the model")


def _tokenizer_source(directory: Path) -> Path:
    if not any((directory / name).is_file() for name in TOKENIZER_MODEL_FILES):
        raise ModelLoadError(f"{directory} has no tokenizer files ({', '.join(TOKENIZER_MODEL_FILES)}): "
                             "save the processor's tokenizer into the folder as well")
    return directory


# ----------------------------------------------------------------------------------------- the config
def _tower_dict(config: dict, key: str, model_type: str) -> dict[str, Any]:
    tower = config.get(key) or {}
    if not isinstance(tower, dict):
        raise ModelLoadError(f"config.json's {key} is not an object")
    refuse_auto_map(tower, f"config.json's {key}")
    plain = {k: v for k, v in tower.items() if isinstance(v, (int, float, str, bool)) or v is None}
    for drop in ("transformers_version", "_name_or_path", "architectures", "torch_dtype", "dtype", "model_type"):
        plain.pop(drop, None)
    plain["model_type"] = model_type
    return plain


def _tower_defaults(model_type: str, tower: dict[str, Any]) -> dict[str, Any]:
    """The tower's config as transformers completes it (defaults filled in), as plain values."""
    from transformers import AutoConfig

    values = dict(tower)
    values.pop("model_type")
    try:
        full = AutoConfig.for_model(model_type, **values).to_dict()
    except (ValueError, TypeError) as error:
        raise ModelLoadError(f"config.json's {model_type} is not valid ({first_line(error)})") from error
    return full


def import_config(directory: Path, config: dict, preprocessor: dict, tokenizer_max_length: int | None,
                  logit_scale: float | None = None) -> ModelConfig:
    """The COTS config of a CLIP-family checkpoint.

    Objectives: the instance level (momentum contrast against the queues), the task level (KL alignment)
    and AMF apply unchanged: they need only the two embeddings. The token level does not apply as such:
    neither family's tokenizer has a [MASK] token and CLIP's text tower is causal, so CMLM stays off
    (``loss.use_cmlm: false``); CMVM needs a dVAE trained on the tower's grid, so the token level is off
    (``loss.use_mvlm: false``) until the trainer's ``--tokenizer`` turns it on for CMVM alone. The contrastive
    temperature starts at the checkpoint's own (``exp(-logit_scale)`` of the trained ``logit_scale`` weight:
    0.01 for OpenAI CLIP), within TEMPERATURE_RANGE. SigLIP's ``logit_bias`` is not read: the instance level
    is COTS's InfoNCE against the momentum queue, not SigLIP's sigmoid loss, and search ranks by dot product,
    which one shared bias does not change.
    """
    family = FAMILIES[config["model_type"]]
    vision = _tower_dict(config, "vision_config", family.vision_type)
    text = _tower_dict(config, "text_config", family.text_type)
    vision_full, text_full = _tower_defaults(family.vision_type, vision), _tower_defaults(family.text_type, text)
    image_size = int(vision_full["image_size"])
    embed_dim = _joint_width(directory, family, config, vision_full, text_full)
    crop = preprocessor.get("crop_size") if preprocessor.get("do_center_crop", family.center_crop) else None
    size = preprocessor.get("size") or {}
    processed = (crop or {}).get("height") or size.get("height") or size.get("shortest_edge") or image_size
    if int(processed) != image_size:
        raise ModelLoadError(f"{directory}: the preprocessor makes {processed} px images but the vision tower "
                             f"takes {image_size} px")
    max_length = int(text_full.get("max_position_embeddings", 77))
    if tokenizer_max_length and tokenizer_max_length < max_length:
        max_length = int(tokenizer_max_length)
    if logit_scale is None:  # not in the weights: the config's starting value
        logit_scale = float(config.get("logit_scale_init_value", 2.6592))
    low, high = TEMPERATURE_RANGE
    temperature = min(high, max(low, math.exp(-logit_scale)))
    return ModelConfig(
        name=checkpoint_name(directory), image_size=image_size, embed_dim=embed_dim,
        vision=VisionConfig(backend="transformers", model_name=family.vision_type, hf_config=vision,
                            mean=tuple(float(x) for x in preprocessor.get("image_mean", (0.5, 0.5, 0.5))),
                            std=tuple(float(x) for x in preprocessor.get("image_std", (0.5, 0.5, 0.5))),
                            interpolation=_RESAMPLE.get(int(preprocessor.get("resample", 3)), "bicubic"),
                            resize=family.resize, resize_backend="tensor", projection=family.projection),
        text=TextConfig(hf_config=text, pooling="pooler", max_length=max_length, padding=family.padding,
                        projection=family.projection),
        queue=QueueConfig(size=4096, momentum=0.995, temperature=temperature),
        loss=LossConfig(use_mvlm=False, use_cmlm=False, use_cmvm=False, amf_min_queue=512, mvm_min_block=4),
        tokenizer=TokenizerConfig(vocab_size=1024, hidden_dim=64, codebook_dim=64),
    )


def _joint_width(directory: Path, family: ClipFamily, config: dict, vision_full: dict, text_full: dict) -> int:
    """The joint space's width: the projections' (config.json's projection_dim), or without projections the
    towers' own, which must then agree."""
    if family.projection_dim_default is not None:
        return int(config.get("projection_dim", family.projection_dim_default))
    width = int(text_full.get("projection_size") or text_full["hidden_size"])
    if width != int(vision_full["hidden_size"]):
        raise ModelLoadError(f"{directory}: the {family.architecture} towers' widths differ "
                             f"({vision_full['hidden_size']} and {width}); cots supports checkpoints whose towers "
                             "share one width")
    return width


# ------------------------------------------------------------------------------------------- the load
def _load_tokenizer(directory: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory), **hub_options(local_only=True))
    except (OSError, ValueError, TypeError, KeyError, ImportError) as error:
        raise ModelLoadError(f"cannot load the tokenizer in {directory}: {first_line(error)}") from error


def _text_prefix(text_encoder: nn.Module) -> str:
    # transformers 5 keeps a tower's modules on the tower model itself, 4.x under .text_model/.vision_model
    return "text_model." if hasattr(text_encoder.model, "text_model") else ""


def _checkpoint_keys(model: COTS, family: ClipFamily) -> dict[str, str]:
    """Prefixes of the checkpoint's keys -> COTS's."""
    vision = "vision_model." if hasattr(model.image_encoder.model, "vision_model") else ""
    return {"vision_model.": f"image_encoder.model.{vision}",
            "text_model.": f"text_encoder.model.{_text_prefix(model.text_encoder)}", **family.projection_keys}


def read_checkpoint(directory: Path) -> tuple[ClipFamily, ModelConfig, Any, list[Path]]:
    """A CLIP-family folder's family, COTS config, tokenizer and weight files (nothing built yet)."""
    check_model_folder(directory)  # plain files only, no auto_map in any config
    config = read_json(directory / "config.json", "the model config")
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        known = " and ".join(f"{name} ({family.architecture})" for name, family in FAMILIES.items())
        raise ModelLoadError(f"{directory} holds a {model_type!r} model; cots loads {known} checkpoints, or folders "
                             "saved by cots")
    weights = weight_files(directory)
    check_hf_checkpoint(config, weights, directory / "config.json")  # sizes against the weights, before building
    tokenizer = _load_tokenizer(_tokenizer_source(directory))
    preprocessor = read_image_preprocessing(directory)
    tokenizer_max = getattr(tokenizer, "model_max_length", None)
    tokenizer_max = tokenizer_max if isinstance(tokenizer_max, int) and tokenizer_max < 100_000 else None
    return (FAMILIES[model_type], import_config(directory, config, preprocessor, tokenizer_max, _logit_scale(weights)),
            tokenizer, weights)


def _logit_scale(weights: list[Path]) -> float | None:
    """The trained contrastive scale (log of the inverse temperature), if the checkpoint holds one."""
    from safetensors import safe_open

    for path in weights:
        try:
            with safe_open(str(path), framework="pt") as handle:
                if "logit_scale" in handle.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                    value = float(handle.get_tensor("logit_scale").float().reshape(-1)[0])
                    return value if math.isfinite(value) else None
        except Exception:  # noqa: BLE001 - copy_weights reports an unreadable file with its name
            return None
    return None


def copy_weights(own: dict[str, torch.Tensor], weights: list[Path], prefixes: dict[str, str]) -> set[str]:
    """Copy the tensors of ``weights`` whose key starts with a prefix of ``prefixes`` into ``own`` (a state
    dict) under the mapped name, checking names and shapes; the names filled. Other keys are skipped."""
    from safetensors import safe_open

    loaded: set[str] = set()
    with torch.no_grad():
        for path in weights:
            try:
                with safe_open(str(path), framework="pt") as handle:
                    for key in handle.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                        prefix = next((p for p in prefixes if key.startswith(p)), None)
                        if prefix is None:
                            continue  # logit_scale, logit_bias, the other tower: not wanted here
                        target = prefixes[prefix] + key[len(prefix):]
                        if target not in own:
                            raise ModelLoadError(f"{path.name} holds {key}, which the config's architecture lacks")
                        tensor = handle.get_tensor(key)
                        if tuple(tensor.shape) != tuple(own[target].shape):
                            raise ModelLoadError(f"{path.name}: {key} has shape {tuple(tensor.shape)}, the config "
                                                 f"asks for {tuple(own[target].shape)}")
                        own[target].copy_(tensor)
                        loaded.add(target)
            except ModelLoadError:
                raise
            except Exception as error:  # noqa: BLE001 - a damaged or truncated file: one line
                raise ModelLoadError(f"cannot read {path} ({first_line(error)})") from error
    return loaded


def _require(directory: Path, wanted: set[str], loaded: set[str]) -> None:
    missing = sorted(wanted - loaded)
    if missing:
        raise ModelLoadError(f"{directory} does not match its config: {len(missing)} weights missing "
                             f"(e.g. {missing[0]})")


def load_hf_checkpoint(directory: str | Path) -> COTS:
    """A Hugging Face CLIPModel/SiglipModel folder as a COTS model, ready for inference (training builds
    the momentum copies from these weights)."""
    from cots_core.model import COTS

    directory = Path(directory)
    family, cots_config, tokenizer, weights = read_checkpoint(directory)
    model = COTS(cots_config, pretrained_backbones=False, tokenizer=tokenizer, weights_follow=True)
    own = model.state_dict()
    loaded = copy_weights(own, weights, _checkpoint_keys(model, family))
    # every tower weight, and the projection matrices a family has (bias-free: COTS's bias is zero)
    wanted = {k for k in own if k.startswith(("image_encoder.model.", "text_encoder.model."))}
    for target in family.projection_keys.values():
        wanted.add(target + "weight")
        model.get_submodule(target.rstrip(".")).bias.data.zero_()
    _require(directory, wanted, loaded)
    model.has_training_state = False
    return model


# ------------------------------------------------------------------------------ text queries alone
class HFTextTower(nn.Module):
    """A transformers text tower and its projection, for text queries: L2-normalised embeddings [B, D]."""

    def __init__(self, encoder: HFTextEncoder, projection: nn.Module):
        super().__init__()
        self.encoder, self.projection = encoder, projection

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feature = self.encoder(input_ids, attention_mask).global_feature
        return F.normalize(self.projection(feature).float(), dim=-1)


def load_text_query_model(directory: Path, model_id: str) -> TextQueryModel:
    """The text half of a CLIP-family checkpoint, through transformers (the image tower and timm are not
    built, so a cold ``cots search`` pays for half the model): a Hugging Face folder, or a COTS checkpoint
    built on such towers (``model_folders.uses_clip_family_towers``)."""
    if hf_model_type(directory) is not None:
        family, config, tokenizer, weights = read_checkpoint(directory)
        source = {"text_model.": "encoder.model.{text}",
                  **{key: "projection." for key, target in family.projection_keys.items()
                     if target == "text_projection."}}
        # a family's projection is bias-free (COTS's bias stays zero); without one it stays the identity
        projection_keys = {"projection.weight"} if len(source) > 1 else set()
    else:
        check_model_folder(directory)
        config = ModelConfig.load_json(directory / CONFIG_FILE)
        tokenizer = load_text_tokenizer(config.text, directory)
        weights = [directory / WEIGHTS_FILE]
        source = {"text_encoder.model.": "encoder.model.", "text_projection.": "projection."}
        projection_keys = {"projection.weight", "projection.bias"}
    encoder = HFTextEncoder(config.text, pretrained=False, init_weights=False)
    tower = HFTextTower(encoder, linear_projection(config.text.projection, encoder.width, config.embed_dim, "text"))
    if projection_keys == {"projection.weight"}:
        tower.projection.bias.data.zero_()
    prefixes = {k: v.format(text=_text_prefix(encoder)) for k, v in source.items()}
    own = tower.state_dict()
    loaded = copy_weights(own, weights, prefixes)
    _require(directory, {k for k in own if k.startswith("encoder.model.")} | projection_keys, loaded)
    return TextQueryModel(config, model_id, tower, partial(tokenize_texts, tokenizer, config.text), tokenizer)
