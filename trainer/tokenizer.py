"""``cots train tokenizer``: fit the dVAE image tokenizer to a collection's images.

The dVAE sees pixels exactly as the model's image tower does (the preset's eval ``preprocess``), and
its grid is the tower's token grid, so the ids it gives are CMVM targets for that preset.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from cots_core.dvae import DiscreteVAE
from cots_core.encoders import build_image_encoder
from cots_core.transforms import build_transform
from trainer.build import model_config
from trainer.config import TrainConfig
from trainer.data import PairDataset, Record, ResumableBatchSampler, collate_pairs, load_records
from trainer.loop import StopFlag, seed_everything
from trainer.optim import build_optimizer
from trainer.runlog import RunLog


def build_tokenizer(cfg: TrainConfig) -> tuple[DiscreteVAE, Any]:
    """A fresh dVAE sized for the config's image tower, and the pixel transform it trains on."""
    config = model_config(cfg)
    vision = config.vision.__class__(**{**config.vision.__dict__, "pretrained": None})
    grid = build_image_encoder(vision, config.image_size, pretrained=False).grid
    transform = build_transform(config.image_size, config.vision, train=cfg.data.augment)
    return DiscreteVAE(config.tokenizer, config.image_size, grid), transform


def train_tokenizer(cfg: TrainConfig, log=print) -> dict[str, Any]:
    """Train on every image of ``cfg.data.train`` (captions unused); save to ``cfg.out`` at the end or on interrupt."""
    seed_everything(cfg.seed)
    dvae, transform = build_tokenizer(cfg)
    device = torch.device("cuda" if cfg.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    dvae.to(device).train()
    records, report = load_records(cfg.data.train, cfg.data.verify)
    log(f"data: {report.summary()}")
    images = [Record(r.path, r.captions[:1], r.kind, r.split, r.payload) for r in records]
    dataset = PairDataset(images, transform, cfg.seed, cfg.data.frames)
    sampler = ResumableBatchSampler(len(dataset), min(cfg.batch_size, len(dataset)), cfg.seed)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=cfg.data.num_workers,
                        generator=torch.Generator().manual_seed(cfg.seed))
    optimizer, scheduler = build_optimizer(dvae, cfg.optim, cfg.steps)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    cfg.save(cfg.out)
    runlog = RunLog(cfg.out, cfg.steps, enabled=True, progress=cfg.progress)
    batches = iter(loader)
    step, values = 0, {}
    try:
        with StopFlag() as stop:
            while step < cfg.steps and not stop.raised:
                pixels = next(batches)["pixels"].to(device)
                out = dvae(pixels, tau=dvae.tau_at(step / max(1, cfg.steps - 1)))
                out["loss"].backward()
                if cfg.optim.clip_grad > 0:
                    torch.nn.utils.clip_grad_norm_(dvae.parameters(), cfg.optim.clip_grad)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                values = {k: float(out[k].detach()) for k in ("loss", "recon_loss", "kl")}
                runlog.progress(values)
                if step % max(1, cfg.log_every) == 0 or step == cfg.steps:
                    runlog.write(step, values)
    finally:
        runlog.close()
    dvae.config.trained = step > 0  # what --tokenizer checks and records in the model's config
    dvae.save_pretrained(cfg.out)
    return {"step": step, "out": cfg.out, "interrupted": step < cfg.steps, **values}


def run_cli(cfg: TrainConfig) -> int:
    summary = train_tokenizer(cfg, log=lambda text: print(text, file=sys.stderr))
    print(f"dVAE tokenizer saved to {summary['out']} after {summary['step']} steps "
          f"(reconstruction MSE {summary.get('recon_loss', float('nan')):.4f})")
    return 130 if summary["interrupted"] else 0
