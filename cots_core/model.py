"""COTS: two separate encoders, a joint embedding space, and the three levels of cross-modal interaction."""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cots_core import losses
from cots_core.config import TEMPERATURE_RANGE, ModelConfig
from cots_core.config_limits import check_model_config
from cots_core.dvae import DiscreteVAE
from cots_core.encoders import HFTextEncoder, build_image_encoder, load_text_tokenizer, tokenize_texts
from cots_core.errors import ModelLoadError
from cots_core.folder_safety import check_model_folder
from cots_core.heads import (
    RESIDUAL_KEYS,
    CaptionMemory,
    CrossGlobalMap,
    TokenPredictionHead,
    build_image_projection,
    build_text_projection,
    image_embedding,
)
from cots_core.masking import block_mask_batch, mask_words
from cots_core.model_folders import CONFIG_FILE, WEIGHTS_FILE, hf_model_type
from cots_core.momentum import FeatureQueue, make_momentum_copy, momentum_update
from cots_core.serialization import load_state_dict_file, save_state_dict_file
from cots_core.transforms import build_transform

TOKENIZER_DIR = "tokenizer"
# The modules that have a momentum twin (``image_encoder`` -> ``image_encoder_m``).
_MOMENTUM_TWINS = ("image_encoder", "image_projection", "text_encoder", "text_projection")
# State that a checkpoint may leave out (an inference-only export): rebuilt from the online weights.
_OPTIONAL_PREFIXES = ("image_encoder_m.", "image_projection_m.", "text_encoder_m.", "text_projection_m.",
                      "queue.", "image_tokenizer.", "temperature")


def _momentum_twin(name: str) -> property:
    """``COTS.<name>_m``: the built momentum twin, or the online module itself while that takes no gradient
    (a frozen tower's EMA would only copy it: no second copy of its weights, no EMA)."""

    def twin(self: COTS) -> nn.Module:
        built = self._modules.get(name + "_m")
        if built is not None:
            return built
        online = self._modules[name]
        if _is_frozen(online):
            return online
        raise AttributeError(f"{name}_m is built when training starts (COTS.train, training_step)")

    return property(twin, doc=twin.__doc__)


class COTS(nn.Module):
    """The COTS model. Inference uses only the online encoders; training adds momentum encoders,
    queues, masked-modelling heads and the dVAE image tokenizer (which receives no gradient)."""

    # not submodules while they are the online module (frozen): then they hold no state of their own
    image_encoder_m = _momentum_twin("image_encoder")
    image_projection_m = _momentum_twin("image_projection")
    text_encoder_m = _momentum_twin("text_encoder")
    text_projection_m = _momentum_twin("text_projection")

    def __init__(self, config: ModelConfig, pretrained_backbones: bool = True, checkpoint_dir: Path | None = None,
                 tokenizer=None, weights_follow: bool = False):
        """``weights_follow``: every tower weight is about to be loaded from a checkpoint, so the
        transformers towers skip their random initialisation (seconds for a ViT-B)."""
        super().__init__()
        self.config = config
        self.image_encoder = build_image_encoder(config.vision, config.image_size, pretrained=pretrained_backbones,
                                                 init_weights=not weights_follow)
        self.text_encoder = HFTextEncoder(config.text, pretrained=pretrained_backbones, init_weights=not weights_follow)
        self.tokenizer = tokenizer if tokenizer is not None else load_text_tokenizer(config.text, checkpoint_dir)
        self.image_projection = build_image_projection(config.vision, self.image_encoder.width, config.embed_dim)
        self.text_projection = build_text_projection(config.text, self.text_encoder.width, config.embed_dim)
        self.caption_memory = CaptionMemory(self.image_encoder.width, config.embed_dim, config.vision.caption_memory)

        # the momentum encoders (image_encoder_m, ...) are built when training starts (train(), training_step):
        # inference never needs them, and they would double the memory of a ViT-L
        self.queue = FeatureQueue(config.queue.size, config.embed_dim)
        # tau of MCL and the KL; learned when queue.learn_temperature (as ALBEF's temp), clamped to TEMPERATURE_RANGE
        self.temperature = nn.Parameter(torch.tensor(float(config.queue.temperature)),
                                        requires_grad=config.queue.learn_temperature)

        # token level: the only exchange between the streams is the other stream's global feature
        self.text_global_to_image = CrossGlobalMap(self.text_encoder.width, self.image_encoder.width)
        self.image_global_to_text = CrossGlobalMap(self.image_encoder.width, self.text_encoder.width)
        word_embeddings = self.text_encoder.input_embeddings()
        if len(self.tokenizer) > word_embeddings.num_embeddings:
            raise ModelLoadError(f"tokenizer has {len(self.tokenizer)} entries but the text model only "
                                 f"{word_embeddings.num_embeddings} embeddings")
        self.mlm_head = TokenPredictionHead(self.text_encoder.width, word_embeddings.num_embeddings,
                                            tied_embeddings=word_embeddings)
        self.mvm_head = TokenPredictionHead(self.image_encoder.width, config.tokenizer.vocab_size)
        # None where the token grid cannot have one (patch 14 at 224 px): such a model trains without CMVM
        self.image_tokenizer = DiscreteVAE(config.tokenizer, config.image_size, self.image_encoder.grid) \
            if DiscreteVAE.fits(config.image_size, self.image_encoder.grid) else None
        if self.image_tokenizer is not None:
            self.image_tokenizer.requires_grad_(False)

        self.preprocess = build_transform(config.image_size, config.vision, train=False)
        self.train_transform = build_transform(config.image_size, config.vision, train=True)
        self._model_id: str | None = None
        # False when loaded from an inference-only checkpoint: the dVAE and token heads are then untrained
        self.has_training_state = True

    def train(self, mode: bool = True) -> COTS:
        if mode:
            self.build_momentum_encoders()
        super().train(mode)
        if mode and self.config.vision.freeze_batchnorm:
            for module in self.image_encoder.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        if mode:  # a frozen tower (and its momentum twin) computes as at inference: no dropout noise
            for tower, twin in ((self.image_encoder, self.image_encoder_m), (self.text_encoder, self.text_encoder_m)):
                if _is_frozen(tower):
                    tower.eval()
                    twin.eval()
        return self

    # ---------------------------------------------------------------- inference
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def grid(self) -> tuple[int, int]:
        return self.image_encoder.grid

    @property
    def model_id(self) -> str:
        """Stable identifier of the online weights: embeddings made by different weights never mix."""
        if self._model_id is None:
            digest = hashlib.sha256()
            for module in (self.image_encoder, self.image_projection, self.text_encoder, self.text_projection,
                           self.caption_memory):  # an empty memory has no state: ids of older models hold
                for name, tensor in module.state_dict().items():
                    if name.startswith("residual.") and not tensor.any():
                        continue  # a residual still at zero computes nothing: same id as before it existed
                    digest.update(name.encode())
                    digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
            self._model_id = f"{self.config.name}-{digest.hexdigest()[:12]}"
        return self._model_id

    def use_stored_model_id(self, model_id: str) -> None:
        """Take ``model_id`` as the id without hashing the weights: the id stored for the folder they were just
        read from (``cots_core.model_ids``, by ``cots_core.loading``)."""
        self._model_id = model_id

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return tokenize_texts(self.tokenizer, self.config.text, texts)

    @contextlib.contextmanager
    def _inference(self) -> Iterator[None]:
        modules = (self.image_encoder, self.image_projection, self.text_encoder, self.text_projection)
        was_training = [m.training for m in modules]
        for module in modules:
            module.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            for module, mode in zip(modules, was_training):
                module.train(mode)

    def embed_image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Online image embeddings with gradient (training and fine-tuning code)."""
        return image_embedding(self.image_projection, self.caption_memory, self.image_encoder(pixels).global_feature)

    def embed_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_projection(self.text_encoder(input_ids, attention_mask).global_feature).float(),
                           dim=-1)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings [B, D] from preprocessed pixels [B, 3, S, S]."""
        with self._inference():
            return self.embed_image_features(pixels.to(self.device))

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """L2-normalised text embeddings [B, D]."""
        if not texts:
            return torch.zeros(0, self.config.embed_dim)
        tokens = {k: v.to(self.device) for k, v in self.tokenize(texts).items()}
        with self._inference():
            return self.embed_text_features(tokens["input_ids"], tokens["attention_mask"])

    def encode_video(self, frames: torch.Tensor) -> torch.Tensor:
        """A video's embedding [D]: the mean of its frames' image embeddings, renormalised (COTS, sec. 3.1)."""
        if frames.shape[0] == 0:
            raise ValueError("encode_video needs at least one frame")
        return F.normalize(self.encode_images(frames).mean(dim=0), dim=-1)

    def encode_pil(self, images: list[Image.Image]) -> torch.Tensor:
        return self.encode_images(torch.stack([self.preprocess(image) for image in images]))

    # ---------------------------------------------------------------- training
    def build_momentum_encoders(self) -> None:
        """The momentum (EMA) copies of the encoders and projections, starting equal to the online ones
        (as ALBEF starts a fine-tune); those already built are kept. A resumed run then loads their state.
        A module that takes no gradient gets no copy (it is its own twin, ``_momentum_twin``); one frozen
        after its copy was built loses the copy, and one unfrozen later gets its copy then."""
        for name in _MOMENTUM_TWINS:
            online, twin_name = getattr(self, name), name + "_m"
            if _is_frozen(online):
                self._modules.pop(twin_name, None)
            elif twin_name not in self._modules:
                setattr(self, twin_name, make_momentum_copy(online))

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        """(online, twin) of every module with a momentum twin of its own (frozen ones are left out)."""
        self.build_momentum_encoders()
        return [(getattr(self, name), self._modules[name + "_m"]) for name in _MOMENTUM_TWINS
                if name + "_m" in self._modules]

    @torch.no_grad()
    def momentum_update(self) -> None:
        m = self.config.queue.momentum
        for online, twin in self.momentum_pairs():
            momentum_update(online, twin, m)

    def forward(self, batch: dict[str, Any], update_momentum: bool = True) -> dict[str, torch.Tensor]:
        return self.training_step(batch, update_momentum)

    def training_step(self, batch: dict[str, Any], update_momentum: bool = True) -> dict[str, torch.Tensor]:
        """All COTS objectives on one batch; enqueues the batch's momentum features afterwards.

        The EMA update of the momentum encoders happens first (as in ALBEF), so a trainer only has to
        call backward() and step its optimizer. With gradient accumulation, pass ``update_momentum``
        True on the first micro-batch of an optimiser step only: one EMA update per optimiser step.
        A video pair brings several frames: ``frame_owner`` [N] gives each row of ``pixels`` [N, 3, S, S]
        its pair (contiguous), and the pair's embedding is the mean of its frames' embeddings, as in
        ``encode_video``. CMLM reads that mean's image feature; in CMVM every frame predicts its own dVAE tokens
        (``visual_tokens``, when given, has one row per frame) from its pair's text. ``item_keys`` [P] (optional,
        >= 0): the item each pair comes from, so that queued pairs of the same item count as positives.
        """
        cfg = self.config
        device = self.device
        self.build_momentum_encoders()
        pixels = batch["pixels"].to(device)
        owner = batch.get("frame_owner")
        owner = owner.to(device) if owner is not None else None
        if "input_ids" in batch:
            input_ids, attention_mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        else:
            tokens = self.tokenize(batch["texts"])
            input_ids, attention_mask = tokens["input_ids"].to(device), tokens["attention_mask"].to(device)

        image_out = self.image_encoder(pixels)
        text_out = self.text_encoder(input_ids, attention_mask)
        v = mean_per_pair(F.normalize(self.image_projection(image_out.global_feature).float(), dim=-1), owner)
        t = F.normalize(self.text_projection(text_out.global_feature).float(), dim=-1)
        # identical captions, and pairs of the same item (a photo's other captions), are positives of each other
        # (loss.caption_positives; a departure from plain InfoNCE); batches without item keys: captions only
        keys = caption_keys(batch["texts"]).to(device) if "texts" in batch and cfg.loss.caption_positives else None
        items = batch["item_keys"].to(device) if "item_keys" in batch and cfg.loss.caption_positives else None

        with torch.no_grad():
            if update_momentum:
                self.momentum_update()
            # a frozen tower's momentum twin holds the same weights: reuse its output instead of a second pass
            image_m = image_out.global_feature if _is_frozen(self.image_encoder) \
                else self.image_encoder_m(pixels).global_feature
            text_m = text_out.global_feature if _is_frozen(self.text_encoder) \
                else self.text_encoder_m(input_ids, attention_mask).global_feature
            v_m = mean_per_pair(F.normalize(self.image_projection_m(image_m.detach()).float(), dim=-1), owner)
            t_m = F.normalize(self.text_projection_m(text_m.detach()).float(), dim=-1)
            pair_sim = (v_m * t_m).sum(dim=1)
            # clones: the queues are overwritten in place at the end of this step, before backward()
            queue_image, queue_text, queue_sim = (q.clone() for q in self.queue.valid())
            # queued pairs with the same caption or item as a batch pair are its positives, not its negatives
            queue_positive = self.queue.positives(keys, items)

        if cfg.loss.use_amf:
            keep = losses.amf_keep_mask(pair_sim, queue_sim, cfg.loss.amf_k, cfg.loss.amf_min_queue)
            warm = queue_sim.numel() >= max(2, cfg.loss.amf_min_queue)
            threshold = losses.amf_threshold(queue_sim, cfg.loss.amf_k) if warm else torch.tensor(float("-inf"))
        else:
            keep = torch.ones_like(pair_sim, dtype=torch.bool)
            threshold = torch.tensor(float("-inf"))
        tau = self.contrastive_temperature()
        zero = losses._zero_like(v, t)

        loss_mcl = losses.mcl_loss(v[keep], t[keep], v_m[keep], t_m[keep], queue_image, queue_text, tau,
                                   queue_positive[keep] if queue_positive is not None else None) \
            if cfg.loss.use_mcl else zero
        loss_kl = losses.kl_alignment_loss(v[keep], t[keep], v_m[keep], t_m[keep], queue_image, queue_text, tau) \
            if cfg.loss.use_kl else zero
        if cfg.loss.use_mvlm:
            image_global = mean_per_pair(image_out.global_feature, owner, normalize=False)
            loss_cmlm = self._cmlm(input_ids, attention_mask, image_global, keep) if cfg.loss.use_cmlm else zero
            visual_tokens = batch.get("visual_tokens")
            # every frame predicts its own dVAE tokens from its pair's text, as a photo does (pair of each row)
            pair = owner if owner is not None else torch.arange(pixels.shape[0], device=device)
            loss_cmvm = self._cmvm(pixels, visual_tokens, text_out.global_feature[pair], keep[pair]) \
                if cfg.loss.use_cmvm else zero
        else:
            loss_cmlm = loss_cmvm = zero
        loss = loss_mcl + cfg.loss.w_token * (loss_cmlm + loss_cmvm) + cfg.loss.w_kl * loss_kl

        self.queue.enqueue(v_m, t_m, pair_sim, keys, items)  # every pair, kept or not
        return {
            "loss": loss, "loss_mcl": loss_mcl, "loss_kl": loss_kl,
            "loss_cmlm": loss_cmlm, "loss_cmvm": loss_cmvm,
            "amf_kept": keep.float().mean().detach(), "amf_threshold": threshold.detach().to(device),
            "amf_keep_mask": keep.detach(), "pair_similarity": pair_sim.detach(), "image_embedding": v.detach(),
        }

    def contrastive_temperature(self) -> torch.Tensor:
        """tau for the losses: the (learned) temperature within TEMPERATURE_RANGE."""
        return self.temperature.clamp(*TEMPERATURE_RANGE)

    def _cmlm(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, image_global: torch.Tensor,
              keep: torch.Tensor) -> torch.Tensor:
        tok = self.tokenizer
        masked_ids, labels = mask_words(input_ids, attention_mask, tok.all_special_ids, tok.mask_token_id,
                                        len(tok), self.config.loss.mlm_probability)
        masked_out = self.text_encoder(masked_ids, attention_mask)
        cross = self.image_global_to_text(image_global)
        return losses.cmlm_loss(masked_out.tokens[keep], cross[keep], labels[keep], self.mlm_head)

    def _cmvm(self, pixels: torch.Tensor, visual_tokens: torch.Tensor | None, text_global: torch.Tensor,
              keep: torch.Tensor) -> torch.Tensor:
        if visual_tokens is None:
            visual_tokens = self.image_tokenizer.codebook_indices(pixels)
        visual_tokens = visual_tokens.to(pixels.device).long()
        token_mask = block_mask_batch(pixels.shape[0], self.grid, self.config.loss.mvm_ratio,
                                      self.config.loss.mvm_min_block).to(pixels.device)
        labels = torch.where(token_mask, visual_tokens, torch.full_like(visual_tokens, -100))
        masked_out = self.image_encoder(pixels, token_mask=token_mask)
        cross = self.text_global_to_image(text_global)
        return losses.cmvm_loss(masked_out.tokens[keep], cross[keep], labels[keep], self.mvm_head)

    # ---------------------------------------------------------------- persistence
    def set_caption_memory(self, memory: CaptionMemory) -> None:
        """Install a caption memory (``heads.CaptionMemory.build``); its size goes into the config so the
        saved checkpoint loads with it."""
        self.caption_memory = memory.to(self.device)
        self.config = self.config.replace(vision={"caption_memory": memory.size})
        self._model_id = None

    def export_config(self) -> ModelConfig:
        """The config that rebuilds this architecture offline, without the original pretrained folders."""
        text = dict(model_name_or_path=None, hf_config=self.text_encoder.hf_config_dict(), vocab_file=None)
        queue = {"temperature": round(float(self.contrastive_temperature().detach()), 6)}  # where a learned tau ended
        return self.config.replace(vision={"pretrained": None}, text=text, queue=queue)

    def save_pretrained(self, directory: str | Path, inference_only: bool = False) -> None:
        """config.json + model.safetensors + tokenizer/. `inference_only` leaves out momentum encoders,
        queues and the dVAE (a fine-tune from it starts them afresh)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        if inference_only:
            state = {k: v for k, v in state.items() if not k.startswith(_OPTIONAL_PREFIXES)}
        self.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        save_state_dict_file(state, directory / WEIGHTS_FILE)
        self.export_config().save_json(directory / CONFIG_FILE)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device | None = None) -> COTS:
        """Load a folder written by `save_pretrained`, for inference. Any other model (a name such as
        "cots-lite", a Hugging Face folder, a hub id, a training run): ``cots_core.load_model``."""
        directory = Path(directory).expanduser()
        if not directory.is_dir():
            raise ModelLoadError(f"no model at {directory}: give a directory written by save_pretrained "
                                 "(config.json, model.safetensors)")
        check_model_folder(directory)  # before anything is read: no FIFOs, no code hooks (auto_map)
        if hf_model_type(directory) is not None:
            raise ModelLoadError(f"{directory} holds a Hugging Face checkpoint, not a folder saved by cots: load it "
                                 "with cots_core.load_model")
        config = ModelConfig.load_json(directory / CONFIG_FILE)
        # sizes, no fetching: before anything is built
        check_model_config(config.to_dict(), directory, directory / WEIGHTS_FILE)
        model = cls(config, pretrained_backbones=False, checkpoint_dir=directory, weights_follow=True)
        load_state_dict_file(model, directory / WEIGHTS_FILE, strict=False)
        model._check_required_keys(directory / WEIGHTS_FILE)
        model.eval()
        return model.to(device) if device is not None else model

    def _check_required_keys(self, path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            stored = set(handle.keys())
        missing = [k for k in self.state_dict()
                   if k not in stored and not k.startswith(_OPTIONAL_PREFIXES + RESIDUAL_KEYS)]
        if missing:
            raise ModelLoadError(f"checkpoint file {path} does not match its config: "
                                 f"{len(missing)} missing (e.g. {missing[0]})")
        self.has_training_state = any(k.startswith("image_tokenizer.") for k in stored)

    @torch.no_grad()
    def sync_momentum_encoders(self) -> None:
        """Momentum encoders := online encoders."""
        for online, twin in self.momentum_pairs():
            twin.load_state_dict(online.state_dict())


def _is_frozen(module: nn.Module) -> bool:
    return not any(p.requires_grad for p in module.parameters())


def caption_keys(texts: list[str]) -> torch.Tensor:
    """A 63-bit key per caption, equal for captions that differ only in case and surrounding space."""
    return torch.tensor([int.from_bytes(hashlib.blake2b(" ".join(text.lower().split()).encode(),
                                                        digest_size=8).digest(), "little") >> 1
                         for text in texts], dtype=torch.long)


def mean_per_pair(features: torch.Tensor, owner: torch.Tensor | None, normalize: bool = True) -> torch.Tensor:
    """Rows [N, D] averaged per pair (``owner`` [N], pairs 0..P-1): a video pair's frames become one
    row, renormalised when ``normalize`` (as ``COTS.encode_video``). ``owner`` None: one row per pair."""
    if owner is None:
        return features
    pairs = int(owner.max()) + 1
    sums = features.new_zeros(pairs, features.shape[1]).index_add(0, owner, features)
    means = sums / torch.bincount(owner, minlength=pairs).clamp(min=1).unsqueeze(1).to(features.dtype)
    return F.normalize(means, dim=-1) if normalize else means

