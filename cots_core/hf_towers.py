"""CLIP-family checkpoints as COTS towers: a Hugging Face ``CLIPModel`` or ``SiglipModel`` folder loads as a
COTS model whose embeddings equal transformers' own (``get_image_features``/``get_text_features``).

A CLIP-family checkpoint is exactly what COTS is made of: two separate streams, each with a projection into
one space, compared by a dot product. The vision tower becomes ``HFVisionEncoder``, the text tower the usual
``HFTextEncoder`` with its own pooling (``pooling="pooler"``), and the projections COTS's projections:

| family | image path | text path | tokenisation |
|---|---|---|---|
| CLIP (OpenAI, OpenCLIP/LAION/DataComp in HF format) | ViT, [CLS] after post-norm, bias-free projection | causal, end-of-text token after final norm, bias-free projection | BPE, 77 tokens, batch padding |
| SigLIP, SigLIP 2 (fixed resolution) | ViT, attention-pooling head, no projection | bidirectional, last position through its head, no projection | SentencePiece/Gemma, padded to 64 |

The folder is data only: its config and weights are read, never code (``auto_map`` is refused, every
architecture is built from the config dict by transformers' own classes), and nothing goes to the network.
Which COTS objectives apply to these towers is said in ``import_config``.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

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
from cots_core.encoders import (
    EncoderOutput,
    HFTextEncoder,
    build_hf_tower,
    first_line,
    load_text_tokenizer,
    tokenize_texts,
)
from cots_core.errors import ModelLoadError
from cots_core.folder_safety import check_model_folder, hub_options, refuse_auto_map
from cots_core.heads import linear_projection
from cots_core.model_folders import (
    CONFIG_FILE,
    PREPROCESSOR_FILE,
    PROCESSOR_FILE,
    SHARD_INDEX,
    TOKENIZER_MODEL_FILES,
    WEIGHTS_FILE,
    hf_model_type,
)

if TYPE_CHECKING:
    from cots_core.model import COTS

# model_type of the whole checkpoint -> (family, vision tower type, text tower type, architecture)
FAMILIES = {
    "clip": ("clip", "clip_vision_model", "clip_text_model", "CLIPModel"),
    "siglip": ("siglip", "siglip_vision_model", "siglip_text_model", "SiglipModel"),
}
VISION_TYPES = {vision for _, vision, _, _ in FAMILIES.values()}
_PICKLES = ("pytorch_model.bin", "model.pt", "model.pth", "open_clip_pytorch_model.bin", "tf_model.h5")
# PIL resample codes in preprocessor configs
_RESAMPLE = {2: "bilinear", 3: "bicubic", 0: "nearest"}


def clip_family(config: ModelConfig) -> str | None:
    """"clip" or "siglip" for a model built on towers imported by this module (``import_config``), else None."""
    if config.vision.backend != "transformers":
        return None
    return next((family for family, vision, _, _ in FAMILIES.values() if vision == config.vision.model_name), None)


# ---------------------------------------------------------------------------------------------- the tower
class HFVisionEncoder(nn.Module):
    """A transformers CLIP/SigLIP vision tower with the encoders' interface: patch tokens + pooled feature.

    Masked image modelling (CMVM) replaces the masked patch embeddings by a learned mask token, as
    ``TimmImageEncoder`` does for timm ViTs (BEiT), through a hook on the patch embedding convolution.
    """

    def __init__(self, config: VisionConfig, image_size: int, init_weights: bool = True):
        super().__init__()
        hf = dict(config.hf_config)
        refuse_auto_map(hf, "the vision config (hf_config)")
        if hf.get("model_type") not in VISION_TYPES:
            raise ModelLoadError(f"unsupported vision tower {hf.get('model_type')!r}: cots builds "
                                 f"{', '.join(sorted(VISION_TYPES))} towers from a config")
        try:
            self.model = build_hf_tower(hf, default_type="", init_weights=init_weights)
        except (ValueError, TypeError) as error:
            raise ModelLoadError(f"cannot build the vision tower from its config: {first_line(error)}") from error
        # transformers 5 puts the tower's modules on the model itself; 4.x under .vision_model
        embeddings = getattr(self.model, "vision_model", self.model).embeddings
        self.width = self.model.config.hidden_size
        patch = int(self.model.config.patch_size)
        self.grid = (image_size // patch, image_size // patch)
        # CLIP puts a class token first; SigLIP has none
        self.num_prefix_tokens = 1 if hasattr(embeddings, "class_embedding") else 0
        self.is_vit = True
        self.mask_token = nn.Parameter(torch.zeros(1, self.width, 1, 1))
        # seeded: the token is part of the hashed weights (model_id), and an imported checkpoint has none of
        # its own, so every load of the same folder must give the same one
        nn.init.trunc_normal_(self.mask_token, std=0.02, generator=torch.Generator().manual_seed(0))
        embeddings.patch_embedding.register_forward_hook(self._replace_masked_patches)
        self._token_mask: torch.Tensor | None = None
        self.channels_last = False

    def _replace_masked_patches(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if self._token_mask is None:
            return None  # the patch convolution's output [B, C, H, W]
        mask = self._token_mask.view(output.shape[0], 1, *output.shape[-2:]).to(output.dtype)
        return output * (1 - mask) + self.mask_token.to(output.dtype) * mask

    def forward(self, pixels: torch.Tensor, token_mask: torch.Tensor | None = None) -> EncoderOutput:
        self._token_mask = token_mask
        try:
            out = self.model(pixel_values=pixels)
        finally:
            self._token_mask = None
        return EncoderOutput(tokens=out.last_hidden_state[:, self.num_prefix_tokens:],
                             global_feature=out.pooler_output)


# ------------------------------------------------------------------------------------- folder detection
def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ModelLoadError(f"{path.parent} has no {path.name} ({what})") from error
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{path} is not valid JSON ({first_line(error)})") from error
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} is not a JSON object")
    return data


def read_image_preprocessing(directory: Path) -> dict:
    """The image processor's settings: ``preprocessor_config.json`` (transformers 4, and the hub's folders), or
    the ``image_processor`` inside ``processor_config.json`` (what transformers 5's processors save)."""
    if (directory / PREPROCESSOR_FILE).is_file():
        return _read_json(directory / PREPROCESSOR_FILE, "the image preprocessing")
    if (directory / PROCESSOR_FILE).is_file():
        nested = _read_json(directory / PROCESSOR_FILE, "the processor").get("image_processor")
        if isinstance(nested, dict):
            return nested
        raise ModelLoadError(f"{directory / PROCESSOR_FILE} has no image_processor: save the processor with the model")
    raise ModelLoadError(f"{directory} has neither {PREPROCESSOR_FILE} nor {PROCESSOR_FILE}: save the processor "
                         "with the model")


def _weight_files(directory: Path) -> list[Path]:
    single = directory / "model.safetensors"
    if single.is_file():
        return [single]
    index = directory / SHARD_INDEX
    if index.is_file():
        weight_map = _read_json(index, "the shard index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise ModelLoadError(f"{index} has no weight_map")
        names = sorted(set(weight_map.values()))
        if any(not isinstance(n, str) or "/" in n or "\\" in n or not n.endswith(".safetensors") for n in names):
            raise ModelLoadError(f"{index} names files outside the folder or not in safetensors")
        missing = [n for n in names if not (directory / n).is_file()]
        if missing:
            raise ModelLoadError(f"{directory} is incomplete: {missing[0]} is missing (a half-finished download?)")
        return [directory / n for n in names]
    if any((directory / name).exists() for name in _PICKLES):
        raise ModelLoadError(f"{directory} holds its weights only as a pickle (pytorch_model.bin): cots reads only "
                             "safetensors, which cannot run code; download the model's model.safetensors")
    raise ModelLoadError(f"{directory} has no model.safetensors")


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


def checkpoint_name(directory: Path) -> str:
    """The model's name (its id's prefix): the folder's name, in safe characters."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", directory.resolve().name).strip("-.") or "model"
    return name[:64]


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
    family, vision_type, text_type, _ = FAMILIES[config["model_type"]]
    vision = _tower_dict(config, "vision_config", vision_type)
    text = _tower_dict(config, "text_config", text_type)
    vision_full, text_full = _tower_defaults(vision_type, vision), _tower_defaults(text_type, text)
    image_size = int(vision_full["image_size"])
    if family == "clip":
        embed_dim = int(config.get("projection_dim", 512))
        projection, resize, padding = "linear", "shortest_edge", "longest"
    else:
        embed_dim = int(text_full.get("projection_size") or text_full["hidden_size"])
        if embed_dim != int(vision_full["hidden_size"]):
            raise ModelLoadError(f"{directory}: the SigLIP towers' widths differ ({vision_full['hidden_size']} and "
                                 f"{embed_dim}); cots supports SigLIP checkpoints whose towers share one width")
        projection, resize, padding = "identity_init", "squash", "max_length"
    crop = preprocessor.get("crop_size") if preprocessor.get("do_center_crop", family == "clip") else None
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
        vision=VisionConfig(backend="transformers", model_name=vision_type, hf_config=vision,
                            mean=tuple(float(x) for x in preprocessor.get("image_mean", (0.5, 0.5, 0.5))),
                            std=tuple(float(x) for x in preprocessor.get("image_std", (0.5, 0.5, 0.5))),
                            interpolation=_RESAMPLE.get(int(preprocessor.get("resample", 3)), "bicubic"),
                            resize=resize, resize_backend="tensor", projection=projection),
        text=TextConfig(hf_config=text, pooling="pooler", max_length=max_length, padding=padding,
                        projection=projection),
        queue=QueueConfig(size=4096, momentum=0.995, temperature=temperature),
        loss=LossConfig(use_mvlm=False, use_cmlm=False, use_cmvm=False, amf_min_queue=512, mvm_min_block=4),
        tokenizer=TokenizerConfig(vocab_size=1024, hidden_dim=64, codebook_dim=64),
    )


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


def _checkpoint_keys(model: COTS, family: str) -> dict[str, str]:
    """Prefixes of the checkpoint's keys -> COTS's."""
    vision = "vision_model." if hasattr(model.image_encoder.model, "vision_model") else ""
    keys = {"vision_model.": f"image_encoder.model.{vision}",
            "text_model.": f"text_encoder.model.{_text_prefix(model.text_encoder)}"}
    if family == "clip":
        keys.update({"visual_projection.": "image_projection.", "text_projection.": "text_projection."})
    return keys


def read_checkpoint(directory: Path) -> tuple[str, ModelConfig, Any, list[Path]]:
    """A CLIP-family folder's family, COTS config, tokenizer and weight files (nothing built yet)."""
    check_model_folder(directory)  # plain files only, no auto_map in any config
    config = _read_json(directory / "config.json", "the model config")
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        raise ModelLoadError(f"{directory} holds a {model_type!r} model; cots loads CLIP ({FAMILIES['clip'][3]}) and "
                             f"SigLIP ({FAMILIES['siglip'][3]}) checkpoints, or folders saved by cots")
    weights = _weight_files(directory)
    check_hf_checkpoint(config, weights, directory / "config.json")  # sizes against the weights, before building
    tokenizer = _load_tokenizer(_tokenizer_source(directory))
    preprocessor = read_image_preprocessing(directory)
    tokenizer_max = getattr(tokenizer, "model_max_length", None)
    tokenizer_max = tokenizer_max if isinstance(tokenizer_max, int) and tokenizer_max < 100_000 else None
    return (FAMILIES[model_type][0], import_config(directory, config, preprocessor, tokenizer_max, _logit_scale(weights)),
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
    # every tower weight, and CLIP's projection matrices (their bias is COTS's: zero, as CLIP has none)
    wanted = {k for k in own if k.startswith(("image_encoder.model.", "text_encoder.model."))}
    if family == "clip":
        wanted |= {"image_projection.weight", "text_projection.weight"}
        model.image_projection.bias.data.zero_()
        model.text_projection.bias.data.zero_()
    _require(directory, wanted, loaded)
    model.has_training_state = False
    return model


# ------------------------------------------------------------------------------ text queries alone
class TextQueryModel:
    """Text queries of a CLIP-family model from its text tower alone, for ``cots_core.lean_text``: the
    image tower (and timm) are not built, so a cold ``cots search`` pays for half the model. The text half
    of the inference interface: ``config``, ``model_id``, ``tokenize``, ``encode_texts``."""

    def __init__(self, config: ModelConfig, model_id: str, tower: nn.ModuleDict, tokenizer):
        self.config, self.model_id, self.tower, self.tokenizer = config, model_id, tower.eval(), tokenizer

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return tokenize_texts(self.tokenizer, self.config.text, texts)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings [B, D], as ``COTS.encode_texts``."""
        if not texts:
            return torch.zeros(0, self.config.embed_dim)
        tokens = self.tokenize(texts)
        with torch.inference_mode():
            feature = self.tower["encoder"](tokens["input_ids"], tokens["attention_mask"]).global_feature
            return F.normalize(self.tower["projection"](feature).float(), dim=-1)


def load_text_query_model(directory: Path, model_id: str) -> TextQueryModel:
    """The text half of a CLIP-family checkpoint: a Hugging Face folder, or a COTS checkpoint built on
    such towers (``model_folders.uses_clip_family_towers``)."""
    if hf_model_type(directory) is not None:
        family, config, tokenizer, weights = read_checkpoint(directory)
        source = {"text_model.": "encoder.model.{text}", "text_projection.": "projection."}
    else:
        check_model_folder(directory)
        config = ModelConfig.load_json(directory / CONFIG_FILE)
        tokenizer = load_text_tokenizer(config.text, directory)
        family, weights = "cots", [directory / WEIGHTS_FILE]
        source = {"text_encoder.model.": "encoder.model.", "text_projection.": "projection."}
    encoder = HFTextEncoder(config.text, pretrained=False, init_weights=False)
    tower = nn.ModuleDict({"encoder": encoder,
                           "projection": linear_projection(config.text.projection, encoder.width,
                                                           config.embed_dim, "text")})
    prefixes = {k: v.format(text=_text_prefix(encoder)) for k, v in source.items()}
    own = tower.state_dict()
    loaded = copy_weights(own, weights, prefixes)
    wanted = {k for k in own if k.startswith("encoder.model.")}
    if family == "clip":  # bias-free projection
        wanted.add("projection.weight")
        tower["projection"].bias.data.zero_()
    elif family == "cots":
        wanted |= {"projection.weight", "projection.bias"}  # SigLIP's stays the identity it starts as
    _require(directory, wanted, loaded)
    return TextQueryModel(config, model_id, tower, tokenizer)
