"""AdamW with decoupled weight decay on weights only, and a cosine schedule with linear warm-up."""
from __future__ import annotations

import math

import torch
from torch import nn

from trainer.config import OptimConfig

NO_DECAY_NAMES = ("pos_embed", "cls_token", "position_embeddings", "token_type_embeddings", "mask_token")


TOWER_PREFIXES = ("image_encoder.", "text_encoder.")  # the online towers (momentum twins take no gradient)


def param_groups(model: nn.Module, weight_decay: float, lr: float = 1.0, tower_lr_scale: float = 1.0) -> list[dict]:
    """Matrices decay; norms, biases, embeddings of positions and special tokens do not. Each of those
    is split again: the towers learn at ``lr * tower_lr_scale``, everything else (projections, bridge,
    heads) at ``lr``. Empty groups are left out."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        decays = not (parameter.ndim <= 1 or any(key in name for key in NO_DECAY_NAMES))
        groups.setdefault((name.startswith(TOWER_PREFIXES), decays), []).append(parameter)
    return [{"params": params, "weight_decay": weight_decay if decays else 0.0,
             "lr": lr * (tower_lr_scale if tower else 1.0)}
            for (tower, decays), params in sorted(groups.items(), key=lambda item: (item[0][0], not item[0][1]))]


def cosine_with_warmup(step: int, total: int, warmup: int, floor: float) -> float:
    """LR multiplier: linear 0 -> 1 over `warmup` steps, then cosine down to `floor`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, cfg: OptimConfig, total_steps: int):
    """(AdamW, LambdaLR); the scheduler is stepped once per optimizer step."""
    fused = torch.cuda.is_available() and next(model.parameters()).is_cuda
    optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay, cfg.lr, cfg.tower_lr_scale), lr=cfg.lr,
                                  betas=tuple(cfg.betas),
                                  fused=fused or None)
    warmup = min(cfg.warmup_steps, max(0, total_steps - 1))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_with_warmup(step, total_steps, warmup, cfg.min_lr_ratio))
    return optimizer, scheduler
