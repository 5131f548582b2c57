"""The towers: thin adapters over timm and transformers with one shared interface.

`encoder(inputs, token_mask=None) -> EncoderOutput(tokens [B, L, C], global_feature [B, C])`.

Image: any timm model (``TimmImageEncoder``), or a transformers CLIP/SigLIP vision tower (``HFVisionEncoder``,
built from the config a ``cots_core.hf_checkpoints`` import wrote). Text: a transformers encoder
(``HFTextEncoder``), BERT-family or a CLIP-family text tower with its own pooling.
"""
from __future__ import annotations

import contextlib
import inspect
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cots_core.clip_families import TOWER_CLASSES, VISION_TYPES
from cots_core.config import TextConfig, VisionConfig
from cots_core.errors import ModelLoadError
from cots_core.folder_safety import cached_hub_snapshot, check_model_folder, hub_options, refuse_auto_map
from cots_core.serialization import load_tensor_file
from cots_core.text_graph import tokenizable


@dataclass
class EncoderOutput:
    tokens: torch.Tensor  # [B, L, C]
    global_feature: torch.Tensor  # [B, C]


class TimmImageEncoder(nn.Module):
    """Any timm model: ViTs give their patch tokens, CNNs their last feature map flattened into tokens.

    Masked image modelling: for ViTs the masked patch embeddings are replaced by a learned mask token
    (BEiT); for other models the masked patches are blanked in pixel space (the normalised mean, zero).
    """

    def __init__(self, config: VisionConfig, image_size: int, pretrained: bool = True):
        super().__init__()
        import timm  # here: a CLIP-family or text-only load need not import it (seconds of a cold start)

        kwargs = dict(config.model_kwargs)
        use_timm_weights = pretrained and config.pretrained == "timm"
        try:
            self.model = timm.create_model(config.model_name, pretrained=use_timm_weights, num_classes=0, **kwargs)
        except RuntimeError as error:  # unknown name, or timm weights that cannot be fetched offline
            raise ModelLoadError(f"cannot create timm model {config.model_name!r}: {error}") from error
        if pretrained and config.pretrained and config.pretrained != "timm":
            load_local_weights(self.model, Path(config.pretrained))
        self.width = self.model.num_features
        self.is_vit = hasattr(self.model, "patch_embed") and hasattr(self.model, "blocks") \
            and hasattr(self.model, "num_prefix_tokens")
        if self.is_vit:
            self.grid = tuple(self.model.patch_embed.grid_size)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, self.model.embed_dim))
            nn.init.trunc_normal_(self.mask_token, std=0.02)
            self.model.patch_embed.register_forward_hook(self._replace_masked_patches)
        else:
            reduction = self.model.feature_info[-1]["reduction"]
            self.grid = (image_size // reduction, image_size // reduction)
        self._token_mask: torch.Tensor | None = None
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.channels_last = config.channels_last

    def _replace_masked_patches(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if self._token_mask is None:
            return None
        mask = self._token_mask.view(output.shape[0], -1, 1).to(output.dtype)
        return output * (1 - mask) + self.mask_token.to(output.dtype) * mask

    def forward(self, pixels: torch.Tensor, token_mask: torch.Tensor | None = None) -> EncoderOutput:
        if self.channels_last:
            pixels = pixels.contiguous(memory_format=torch.channels_last)
        if token_mask is not None and not self.is_vit:
            pixels = _blank_patches(pixels, token_mask, self.grid)
        self._token_mask = token_mask if self.is_vit else None
        try:
            features = self.model.forward_features(pixels)
        finally:
            self._token_mask = None
        global_feature = self.model.forward_head(features, pre_logits=True)
        if features.ndim == 4:  # CNN feature map [B, C, H, W]
            tokens = features.flatten(2).transpose(1, 2)
        else:
            tokens = features[:, self.model.num_prefix_tokens:]
        return EncoderOutput(tokens=tokens, global_feature=global_feature)


def _blank_patches(pixels: torch.Tensor, token_mask: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    batch = pixels.shape[0]
    mask = token_mask.view(batch, 1, *grid).to(pixels.dtype)
    mask = nn.functional.interpolate(mask, size=pixels.shape[-2:], mode="nearest")
    return pixels * (1 - mask)


def load_local_weights(model: nn.Module, path: Path) -> None:
    """Load a local .safetensors / .pth / .bin state dict into a timm model (classifier keys dropped)."""
    if not path.is_file():
        raise ModelLoadError(f"image weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = load_tensor_file(path, "image weights file")
            state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    except ModelLoadError:
        raise
    except Exception as error:  # noqa: BLE001 - any reader error means the same thing to the person
        raise ModelLoadError(f"cannot read image weights {path}: {error}") from error
    own = model.state_dict()
    state = {k: v for k, v in state.items() if k in own}
    missing = [k for k in own if k not in state]
    if missing:
        raise ModelLoadError(f"image weights {path} do not fit {type(model).__name__}: "
                             f"{len(missing)} missing keys, e.g. {missing[:3]}")
    model.load_state_dict(state)


def build_hf_tower(hf_config: dict, default_type: str, init_weights: bool = True) -> nn.Module:
    """A transformers model from an inline config dict (``model_type`` + fields), randomly initialised
    unless ``init_weights`` is False (its weights are loaded next); BERT-family models without their
    pooler (COTS pools itself). Raises ValueError for a config transformers rejects."""
    import transformers
    from transformers import AutoConfig, AutoModel

    values = dict(hf_config)
    model_type = values.pop("model_type", default_type)
    config = AutoConfig.for_model(model_type, **values)
    with contextlib.nullcontext() if init_weights else _no_init_weights():
        if model_type in TOWER_CLASSES:
            return getattr(transformers, TOWER_CLASSES[model_type])(config)
        try:
            return AutoModel.from_config(config, add_pooling_layer=False, trust_remote_code=False)
        except TypeError:
            return AutoModel.from_config(config, trust_remote_code=False)


def _no_init_weights():
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers 4.x
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()


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


def build_image_encoder(config: VisionConfig, image_size: int, pretrained: bool = True,
                        init_weights: bool = True) -> nn.Module:
    """The image tower a config names: a timm model, or a transformers CLIP-family vision tower."""
    if config.backend == "transformers":
        return HFVisionEncoder(config, image_size, init_weights=init_weights)
    if config.backend != "timm":
        raise ModelLoadError(f"unknown image tower backend {config.backend!r} (timm, transformers)")
    return TimmImageEncoder(config, image_size, pretrained=pretrained)


class HFTextEncoder(nn.Module):
    """A transformers BERT-family encoder; global feature = [CLS] token or attention-masked mean."""

    def __init__(self, config: TextConfig, pretrained: bool = True, init_weights: bool = True):
        super().__init__()
        from transformers import AutoModel

        self.pooling = config.pooling
        if pretrained and config.model_name_or_path:
            from transformers.utils import logging as hf_logging

            verbosity, progress_bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
            hf_logging.set_verbosity_error()  # the unused pooler weights are expected, not worth a report
            hf_logging.disable_progress_bar()
            name = config.model_name_or_path
            if Path(name).is_dir():
                check_model_folder(name)
            options = hub_options(local_only=Path(name).is_dir())
            try:
                try:
                    self.model = AutoModel.from_pretrained(name, add_pooling_layer=False, **options)
                except TypeError:
                    self.model = AutoModel.from_pretrained(name, **options)
            except pickle.UnpicklingError as error:  # PyTorch's advice (weights_only=False) would run its code
                raise ModelLoadError(f"the text model {name!r} holds Python objects, not only tensors: cots never "
                                     "unpickles code (use safetensors weights)") from error
            except (OSError, ValueError, RuntimeError) as error:
                raise ModelLoadError(f"cannot load text model {name!r}: {first_line(error)}") from error
            finally:
                hf_logging.set_verbosity(verbosity)
                if progress_bar:
                    hf_logging.enable_progress_bar()
        else:
            if not config.hf_config:
                raise ModelLoadError("text config has neither a pretrained model nor an `hf_config`")
            hf = dict(config.hf_config)
            refuse_auto_map(hf, "the text config (hf_config)")
            try:
                self.model = build_hf_tower(hf, default_type="bert", init_weights=init_weights)
            except ValueError as error:  # an unknown model_type, or a config transformers rejects
                raise ModelLoadError(f"cannot build the text model from its config: {first_line(error)}") \
                    from error
        self.width = self.model.config.hidden_size

    def hf_config_dict(self) -> dict:
        """The architecture as a plain dict, so a checkpoint can rebuild it without the original folder."""
        data = self.model.config.to_dict()
        keep = {k: v for k, v in data.items() if isinstance(v, (int, float, str, bool)) or v is None}
        keep["model_type"] = self.model.config.model_type
        for drop in ("transformers_version", "_name_or_path", "architectures", "torch_dtype", "dtype"):
            keep.pop(drop, None)
        return keep

    def input_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncoderOutput:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask)
        tokens = out.last_hidden_state
        if self.pooling == "pooler":  # the tower's own pooling (CLIP-family towers: cots_core.hf_checkpoints)
            global_feature = out.pooler_output
        elif self.pooling == "mean":
            weights = attention_mask.unsqueeze(-1).to(tokens.dtype)
            global_feature = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1e-6)
        else:
            global_feature = tokens[:, 0]
        return EncoderOutput(tokens=tokens, global_feature=global_feature)


def tokenize_texts(tokenizer, config: TextConfig, texts: list[str]) -> dict[str, torch.Tensor]:
    """Token ids and attention mask [B, L] as the text tower was trained: truncated to ``max_length``,
    padded to the batch's longest text or (``padding: max_length``, SigLIP) always to ``max_length``."""
    padding = "max_length" if config.padding == "max_length" else True
    encoded = tokenizer([tokenizable(text) for text in texts], padding=padding, truncation=True,
                        max_length=config.max_length, return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


def shipped_resource(relative: str) -> Path:
    """A file of the shipped resources/ folder: installed as `cots_resources`, or beside a bare checkout."""
    try:
        from cots_resources import resource_path
    except ImportError:  # running from a source tree that was not pip-installed
        return Path(__file__).resolve().parents[1] / "resources" / relative
    return resource_path(relative)


def load_text_tokenizer(config: TextConfig, checkpoint_dir: Path | None = None):
    """The tokenizer: from a checkpoint's `tokenizer/` folder, the pretrained folder, or a vocab file.

    Loading a checkpoint folder never goes to the network: a config that names a hub model without
    a local tokenizer fails at once instead of trying to download it.
    """
    from transformers import AutoTokenizer, BertTokenizerFast

    if checkpoint_dir is not None and (checkpoint_dir / "tokenizer").is_dir():
        check_model_folder(checkpoint_dir)
        try:
            return AutoTokenizer.from_pretrained(str(checkpoint_dir / "tokenizer"), **hub_options(local_only=True))
        except Exception as error:  # noqa: BLE001 - a malformed tokenizer.json raises KeyError, TypeError, ...
            raise ModelLoadError(f"cannot load the tokenizer in {checkpoint_dir / 'tokenizer'}: "
                                 f"{first_line(error)}") from error
    if config.model_name_or_path:
        name = config.model_name_or_path
        if checkpoint_dir is not None and not Path(name).is_dir():
            cached = cached_hub_snapshot(name)
            if cached is None:
                raise ModelLoadError(f"the model in {checkpoint_dir} names the tokenizer {name!r}, which is neither "
                                     "in its tokenizer/ folder nor in the local Hugging Face cache; cots does not "
                                     "download at run time: save the tokenizer into the model's tokenizer/ folder")
            name = str(cached)
        if Path(name).is_dir():
            check_model_folder(name)
        try:
            return AutoTokenizer.from_pretrained(name, **hub_options(local_only=Path(name).is_dir()))
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"cannot load tokenizer {name!r}: {first_line(error)}") from error
    if config.vocab_file:
        path = Path(config.vocab_file)
        if not path.is_absolute():
            path = shipped_resource(config.vocab_file)
        if not path.is_file():
            raise ModelLoadError(f"tokenizer vocabulary not found: {path}")
        # transformers 5 takes `vocab`, 4.x `vocab_file`
        parameters = inspect.signature(BertTokenizerFast.__init__).parameters
        key = "vocab" if "vocab" in parameters else "vocab_file"
        return BertTokenizerFast(**{key: str(path)}, do_lower_case=True)
    raise ModelLoadError("text config names no tokenizer (model_name_or_path or vocab_file)")


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
