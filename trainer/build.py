"""Composition helpers for ``trainer.loop.main``: the model and the data a config asks for."""
from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from cots_core import COTS, CotsError, ModelConfig, load_model
from cots_core.dvae import DiscreteVAE
from cots_core.heads import CaptionMemory
from cots_core.hf_checkpoints import clip_family
from cots_core.momentum import FeatureQueue
from trainer.config import TrainConfig
from trainer.data import (
    LoadReport,
    PairDataset,
    Record,
    ResumableBatchSampler,
    ShardStream,
    collate_pairs,
    detect_format,
    load_frames,
    load_records,
    split_records,
)
from trainer.data.media import MediaError
from trainer.distributed import DistEnv, barrier, rank_seed

TOKEN_CACHE = "visual_tokens.safetensors"


def model_config(cfg: TrainConfig) -> ModelConfig:
    """The preset with the backbone choices and ``model`` overrides of a pretrain config applied."""
    overrides = copy.deepcopy(cfg.model)
    if cfg.image_backbone:
        vision = overrides.setdefault("vision", {})
        if Path(cfg.image_backbone).expanduser().is_file():
            vision["pretrained"] = str(Path(cfg.image_backbone).expanduser().resolve())
        else:
            vision.setdefault("model_name", cfg.image_backbone)
            vision.setdefault("model_kwargs", {})
            vision["pretrained"] = "timm"
    if cfg.text_backbone:
        text = overrides.setdefault("text", {})
        text.update(model_name_or_path=cfg.text_backbone, vocab_file=None, hf_config={})
    config = ModelConfig.preset(cfg.preset)
    return config.replace(**overrides) if overrides else config


def build_model(cfg: TrainConfig, log: Callable[[str], None] = print) -> COTS:
    """Pretrain: a fresh model (random, or unimodal pretrained backbones). Finetune: a saved or named
    COTS model, whose loss settings may still be overridden with ``model.loss``."""
    if cfg.mode == "finetune":
        if not cfg.init_from:
            raise CotsError("finetune needs --from MODEL (a checkpoint folder or a named model such as cots-lite)")
        model = load_model(cfg.init_from)  # a run folder: its best validated model (cots_core.loading)
        extra = set(cfg.model) - {"loss", "queue", "vision"}
        vision = dict(cfg.model.get("vision") or {})
        if extra or set(vision) - {"conse_residual_scale"}:
            bad = sorted(extra) or [f"vision.{sorted(set(vision) - {'conse_residual_scale'})[0]}"]
            raise CotsError(f"finetune can only override model.loss, model.queue and "
                            f"model.vision.conse_residual_scale, not model.{bad[0]}: the architecture comes from "
                            "the checkpoint")
        if vision and hasattr(model.image_projection, "residual_scale"):
            # the residual path of the ConSE bridge (off by default): what lets a fine-tune learn a name
            model.config = model.config.replace(vision=vision)
            # the momentum twin, when not built yet, copies it from the online projection once training starts
            for projection in (model.image_projection, getattr(model, "image_projection_m", None)):
                if projection is not None:
                    projection.residual_scale = model.config.vision.conse_residual_scale
        loss = dict(cfg.model.get("loss") or {})
        if "use_mvlm" not in loss and not cfg.tokenizer and not model.has_training_state \
                and model.config.loss.use_mvlm:
            # an inference-only checkpoint (cots-lite) has no trained dVAE or word head: their losses would
            # only add noise to the contrastive gradient (measured: bench/RESULTS.md)
            loss["use_mvlm"] = False
            log(f"{cfg.init_from} has no trained token heads and no --tokenizer was given: "
                "masked modelling (CMLM/CMVM) is off; pass --set model.loss.use_mvlm=true to force it")
        if loss:
            model.config = model.config.replace(loss=loss)
        if model.caption_memory.size:  # its captions were embedded by the weights this fine-tune changes
            log(f"{cfg.init_from} remembers {model.caption_memory.size} captioned items: this fine-tune builds "
                "a new memory from its own data")
            model.set_caption_memory(CaptionMemory(model.image_encoder.width, model.config.embed_dim))
        if clip_family(model.config) == "siglip":
            log(f"{cfg.init_from} has SigLIP towers: they are fine-tuned with COTS's InfoNCE against the momentum "
                "queue, not SigLIP's sigmoid loss, and its logit_bias is not used (search ranks by dot product)")
        if cfg.model.get("queue"):
            model.config = model.config.replace(queue=cfg.model["queue"])
            if model.config.queue.size != model.queue.size:  # a personal collection may be smaller than the queue
                model.queue = FeatureQueue(model.config.queue.size, model.config.embed_dim)
            if "temperature" in cfg.model["queue"]:  # tau starts where the config says, not where it ended
                model.temperature.data.fill_(model.config.queue.temperature)
        model.temperature.requires_grad_(model.config.queue.learn_temperature)
    else:
        model = COTS(model_config(cfg), pretrained_backbones=True)
    if cfg.tokenizer:
        load_image_tokenizer(model, cfg.tokenizer)
    if cfg.optim.tower_lr_scale == 0:  # frozen towers: no gradient, no backward pass through them
        model.image_encoder.requires_grad_(False)
        model.text_encoder.requires_grad_(False)
    _cmvm_only_with_a_trained_tokenizer(model, cfg, log)
    _cmlm_only_with_a_mask_token(model)
    loss = model.config.loss
    if loss.use_mvlm and loss.use_cmvm and cfg.optim.tower_lr_scale == 0:
        log("CMVM is on with the towers frozen (optim.tower_lr_scale 0): it trains only its own prediction heads, "
            "which search does not use; give optim.tower_lr_scale > 0 for it to shape the image tower")
    model.train()
    return model


def _cmlm_only_with_a_mask_token(model: COTS) -> None:
    """CMLM masks words with the tokenizer's [MASK]: CLIP-family tokenizers have none (and CLIP's text tower
    is causal), so their checkpoints come with ``loss.use_cmlm: false``; asking for it is refused."""
    loss = model.config.loss
    if loss.use_mvlm and loss.use_cmlm and getattr(model.tokenizer, "mask_token_id", None) is None:
        raise CotsError(f"CMLM (masked word modelling) needs a [MASK] token, which the {model.config.name} "
                        "tokenizer does not have: leave model.loss.use_cmlm off for this model")


def _cmvm_only_with_a_trained_tokenizer(model: COTS, cfg: TrainConfig, log: Callable[[str], None]) -> None:
    """CMVM's targets are the dVAE's token ids, meaningful only from a trained dVAE: ``tokenizer.trained``, set
    by --tokenizer (``load_image_tokenizer``) and kept in the checkpoint, so a fine-tune inherits it. With one,
    --tokenizer turns CMVM on (and the token level with it, CMLM left off, where that was off: a CLIP/SigLIP
    import, whose patch embeddings ``HFVisionEncoder`` masks as BEiT does); without one CMVM is off and the
    saved config says so (``loss.use_cmvm: false``), whatever the checkpoint said; asked for explicitly (``--set model.loss.use_cmvm=true``), it is refused."""
    asked = (cfg.model.get("loss") or {}).get("use_cmvm")
    loss = model.config.loss
    if model.config.tokenizer.trained:
        if cfg.tokenizer and asked is None and loss.use_mvlm and not loss.use_cmvm:
            model.config = model.config.replace(loss={"use_cmvm": True})
        elif cfg.tokenizer and asked is None and not loss.use_mvlm \
                and (cfg.model.get("loss") or {}).get("use_mvlm") is None:
            # the token level was off (CLIP/SigLIP towers start so: no [MASK] token for CMLM): on for CMVM alone
            model.config = model.config.replace(loss={"use_mvlm": True, "use_cmvm": True, "use_cmlm": False})
            log(f"--tokenizer: CMVM (masked image modelling) is on; CMLM stays off, as it was in "
                f"{cfg.init_from or cfg.preset}")
        return
    whose = f"the dVAE of {cfg.init_from} was never trained" if cfg.mode == "finetune" else "no --tokenizer given"
    if asked is True:
        raise CotsError(f"model.loss.use_cmvm=true needs a trained image tokenizer ({whose}): train one with "
                        "`cots train tokenizer --data DIR --out TOK` and pass --tokenizer TOK")
    inherited = loss.use_cmvm
    if inherited:
        model.config = model.config.replace(loss={"use_cmvm": False})
    if loss.use_mvlm and asked is None and (cfg.mode != "finetune" or inherited):
        log(f"CMVM (masked image modelling) is off: {whose}; train an image tokenizer with "
            "`cots train tokenizer` and pass --tokenizer DIR to use it")


def load_image_tokenizer(model: COTS, directory: str) -> None:
    """Copy a trained dVAE into the model (its image size and token grid must match the model's) and record
    in the model's config that its tokenizer is trained (``tokenizer.trained``)."""
    own = model.image_tokenizer
    if own is None:
        raise CotsError(f"--tokenizer: this model's {model.config.image_size}px images on a {model.grid} token grid "
                        "cannot be tokenized by a dVAE (it needs a square grid that divides the image by a power "
                        "of two), so CMVM is not available for it: leave --tokenizer out")
    dvae = DiscreteVAE.from_pretrained(directory)
    if json.loads((Path(directory) / "dvae_config.json").read_text())["tokenizer"].get("trained") is False:
        # folders written before the field existed came only from `cots train tokenizer`
        raise CotsError(f"tokenizer {directory} was never trained: train one with `cots train tokenizer`")
    if (dvae.image_size, tuple(dvae.grid), dvae.config.vocab_size) != (own.image_size, tuple(own.grid),
                                                                       own.config.vocab_size):
        raise CotsError(f"tokenizer {directory} is for {dvae.image_size}px images, a {dvae.grid} grid and "
                        f"{dvae.config.vocab_size} codes; this model needs {own.image_size}px, {own.grid}, "
                        f"{own.config.vocab_size} (train one with `cots train tokenizer --preset ...`)")
    own.load_state_dict(dvae.state_dict())
    model.config = model.config.replace(tokenizer={"trained": True})


@dataclass
class TrainData:
    loader: DataLoader
    val_records: list[Record]
    report: LoadReport
    n_train: int  # training pairs (-1 when streamed)
    batch_size: int  # per process: cfg.batch_size, or fewer when the collection is smaller than one batch
    train_records: list[Record] = field(default_factory=list)  # empty when streamed


def _token_cache(model: COTS, records: list[Record], frames: int, path: Path,
                 env: DistEnv) -> list[torch.Tensor]:
    """Visual token ids of each record's eval-transformed frames ([frames, grid]; a photo [1, grid]), computed
    once (rank 0): CMVM has every frame of a video predict its own tokens."""
    key = hashlib.sha256("\n".join(["per-frame", str(frames), *(r.path for r in records)]).encode()).hexdigest()[:16]
    if env.is_main and not (path.is_file() and load_file(str(path)).get(f"k{key}") is not None):
        tokenizer = model.image_tokenizer
        device = next(tokenizer.parameters()).device
        pending, rows, counts = [], [], []
        for index, record in enumerate(records):
            try:
                images = load_frames(record, frames)
            except MediaError:  # this record is replaced at training time anyway
                images = []
            pending += [model.preprocess(image) for image in images] or [
                torch.zeros(3, model.config.image_size, model.config.image_size)]
            counts.append(max(1, len(images)))
            if len(pending) >= 64 or index == len(records) - 1:  # 64 frames at a time: bounded memory
                rows.append(tokenizer.codebook_indices(torch.stack(pending).to(device)).cpu())
                pending = []
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"tokens": torch.cat(rows), "frames": torch.tensor(counts), f"k{key}": torch.zeros(1)}, str(path))
    barrier(env)
    cache = load_file(str(path))
    return list(torch.split(cache["tokens"], cache["frames"].tolist()))


def build_data(cfg: TrainConfig, model: COTS, env: DistEnv, start_batch: int = 0) -> TrainData:
    """Records, split, dataset and an endless loader for this rank, positioned after ``start_batch``."""
    d = cfg.data
    if not d.train:
        raise CotsError("no training data: give --data (a folder, a .csv/.tsv/.jsonl manifest, a COCO .json "
                        "or a shard pattern)")
    transform = model.train_transform if d.augment and not (cfg.tokenizer and cfg.cache_tokens) else model.preprocess
    explicit_val = load_records(d.val, d.verify)[0] if d.val else None
    if detect_format(d.train) == "shards":
        fraction = 0.0 if explicit_val is not None else d.val_fraction
        report = LoadReport(source=d.train)
        val = explicit_val if explicit_val is not None else (
            load_records(d.train, holdout=fraction, seed=cfg.seed, limit=d.max_val_items)[0] if fraction > 0 else [])
        dataset = ShardStream(d.train, transform, cfg.seed, fraction, d.frames, rank=env.rank,
                              world_size=env.world_size, skip=start_batch * cfg.batch_size)
        loader = DataLoader(dataset, batch_size=cfg.batch_size, collate_fn=collate_pairs, num_workers=d.num_workers)
        return TrainData(loader, val[: d.max_val_items], report, -1, cfg.batch_size)
    records, report = load_records(d.train, d.verify)
    train, val = split_records(records, explicit_val, d.val_fraction, cfg.seed, d.val_split, report)
    report.count(train)
    tokens = None
    if cfg.tokenizer and cfg.cache_tokens:
        tokens = _token_cache(model, train, d.frames, Path(cfg.out) / TOKEN_CACHE, env)
    dataset = PairDataset(train, transform, cfg.seed, d.frames, visual_tokens=tokens)
    batch_size = batch_size_for(len(dataset), cfg.batch_size, env.world_size)
    sampler = ResumableBatchSampler(len(dataset), batch_size, cfg.seed, env.rank, env.world_size, start_batch)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=d.num_workers,
                        generator=torch.Generator().manual_seed(rank_seed(cfg.seed, env.rank)),  # workers' seeds
                        persistent_workers=d.num_workers > 0)
    return TrainData(loader, val[: d.max_val_items], report, len(dataset), batch_size, train)


MIN_BATCH = 2  # a contrastive step needs a second pair in the batch besides the queue


def batch_size_for(n_train: int, batch_size: int, world_size: int = 1) -> int:
    """``batch_size``, lowered so that a small collection (fewer pairs than one global batch) still
    makes one batch per epoch; CotsError when it cannot make even a batch of MIN_BATCH per process."""
    if n_train >= batch_size * world_size:
        return batch_size
    fitted = n_train // world_size
    if fitted < MIN_BATCH:
        raise CotsError(f"only {n_train} training pairs after holding out the validation part: need at least "
                        f"{MIN_BATCH * world_size}; caption more photos or lower --val-fraction")
    return fitted
