"""``main``: compose config, distributed environment, model, data, optimiser, then run the loop."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from cots_core import load_model
from trainer.build import TrainData, build_data, build_model
from trainer.caption_memory import attach_caption_memory
from trainer.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from trainer.config import TrainConfig
from trainer.distributed import (
    DistEnv,
    any_rank,
    barrier,
    cleanup,
    gather_objects,
    rank_seed,
    setup_distributed,
)
from trainer.evaluate import evaluate_retrieval
from trainer.memory_items import ITEMS_FILE, save_memory_items
from trainer.optim import build_optimizer
from trainer.run_folders import BEST_METRICS, best_dir, resolve_checkpoint
from trainer.runlog import RunLog

LOSS_KEYS = ("loss", "loss_mcl", "loss_kl", "loss_cmlm", "loss_cmvm", "amf_kept")
Hook = Callable[[int, dict, dict], None]  # (step, batch, model outputs) after each micro-batch


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_for(precision: str, device: torch.device):
    """(autocast context factory, GradScaler or None): bf16/fp16 on CUDA, fp32 on CPU."""
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if device.type == "cuda" else "fp32"
    if precision == "fp32" or device.type != "cuda":
        return contextlib.nullcontext, None
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler


class StopFlag:
    """Set by SIGINT/SIGTERM: the loop writes a checkpoint and returns instead of dying mid-step."""

    def __init__(self):
        self.raised = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: no handlers
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.raised and signum == signal.SIGINT:  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def main(cfg: TrainConfig, resume: str | None = None, hooks: Sequence[Hook] = (),
         log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train as ``cfg`` says (resuming from a checkpoint or run folder); returns a summary dict."""
    env = setup_distributed(cfg.device)
    try:
        seed_everything(cfg.seed)  # the same on every rank: the same initial weights
        model = build_model(cfg, log if env.is_main else (lambda _: None)).to(env.device)
        # from here each rank draws its own masks and dropout (one seed would mask the same places on every rank)
        seed_everything(rank_seed(cfg.seed, env.rank))
        data = None
        if cfg.epochs and not resume:  # the number of steps follows the data (a resumed run saved its steps)
            data = build_data(cfg, model, env)
            cfg = fit_batch(cfg, data, log if env.is_main else (lambda _: None))
            cfg = epoch_schedule(cfg, data.n_train, env.world_size)
        optimizer, scheduler = build_optimizer(model, cfg.optim, cfg.steps)
        autocast, scaler = autocast_for(cfg.precision, env.device)
        state = load_checkpoint(resolve_checkpoint(resume), model, optimizer, scheduler, scaler) if resume else None
        start = state["step"] if state else 0
        if data is None:
            data = build_data(cfg, model, env, start_batch=start * cfg.grad_accum)
            cfg = fit_batch(cfg, data, log if env.is_main else (lambda _: None))
        if env.is_main:
            Path(cfg.out).mkdir(parents=True, exist_ok=True)
            cfg.save(cfg.out)
            log(f"data: {data.report.summary()}")
            log(f"training on {data.n_train if data.n_train >= 0 else 'streamed'} pairs, validating on "
                f"{len(data.val_records)} items; {env.world_size} process(es) on {env.device}")
        wrapped = (DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None,
                                           broadcast_buffers=False, find_unused_parameters=True)
                   if env.distributed else model)
        if state:
            restore_rng(state["rng"], env.rank)
        loop = TrainLoop(cfg, env, model, wrapped, optimizer, scheduler, scaler, autocast, data, hooks)
        summary = loop.run(start, best=(state or {}).get("extra", {}).get("best_rsum"))
        best = best_dir(cfg.out)
        if (cfg.mode == "finetune" and cfg.caption_memory and env.is_main and not summary["interrupted"]
                and data.train_records and (best / BEST_METRICS).is_file()):
            remember_captions(cfg, best, data, log)
        return summary
    finally:
        cleanup(env)


def remember_captions(cfg: TrainConfig, folder: Path, data: TrainData, log: Callable[[str], None]) -> None:
    """Give the run's best model a caption memory of its training data (trainer.caption_memory)."""
    best = load_model(folder)
    summary = attach_caption_memory(best, data.train_records, data.val_records, cfg.data.frames, log)
    if summary["entries"]:
        # the record first: a model saved with a memory and no record of it is refused by `cots eval`
        save_memory_items(folder, data.train_records + (data.val_records if summary.get("holds_held_out") else []))
        best.save_pretrained(folder)
    else:
        (folder / ITEMS_FILE).unlink(missing_ok=True)
    metrics_file = folder / BEST_METRICS
    metrics = json.loads(metrics_file.read_text())
    metrics_file.write_text(json.dumps({**metrics, "caption_memory": summary}, indent=1) + "\n")


def fit_batch(cfg: TrainConfig, data: TrainData, log: Callable[[str], None]) -> TrainConfig:
    """``cfg`` with the batch size the data allows (a collection smaller than one batch trains on
    batches of all its pairs), said once."""
    if data.batch_size == cfg.batch_size:
        return cfg
    log(f"batch size {cfg.batch_size} is more than the {data.n_train} training pairs: using {data.batch_size}")
    return dataclasses.replace(cfg, batch_size=data.batch_size)


def epoch_schedule(cfg: TrainConfig, n_train: int, world_size: int = 1) -> TrainConfig:
    """``cfg`` with ``steps`` = epochs x optimizer steps per epoch and a validation pass every epoch."""
    if n_train < 0:
        raise ValueError("streamed shards have no epoch length: give --steps")
    per_epoch = max(1, math.ceil(n_train / (cfg.batch_size * cfg.grad_accum * world_size)))
    return dataclasses.replace(cfg, steps=max(1, round(cfg.epochs * per_epoch)), epochs=None,
                               eval_every=cfg.eval_every or per_epoch)


class TrainLoop:
    def __init__(self, cfg: TrainConfig, env: DistEnv, model, wrapped, optimizer, scheduler, scaler, autocast,
                 data: TrainData, hooks: Sequence[Hook]):
        self.cfg, self.env, self.model, self.wrapped = cfg, env, model, wrapped
        self.optimizer, self.scheduler, self.scaler, self.autocast = optimizer, scheduler, scaler, autocast
        self.data, self.hooks = data, hooks
        self.params = [p for p in model.parameters() if p.requires_grad]

    def run(self, start: int, best: float | None = None) -> dict[str, Any]:
        cfg, env = self.cfg, self.env
        runlog = RunLog(cfg.out, cfg.steps, start, enabled=env.is_main, progress=cfg.progress)
        batches = iter(self.data.loader)
        summary: dict[str, Any] = {"interrupted": False, "eval": None, "checkpoint": None}
        step = start
        if start >= cfg.steps or (cfg.mode == "finetune" and start == 0 and self.data.val_records):
            # nothing to train (--steps 0): still report the model's metrics; a fine-tune also scores its
            # starting point, so RUN/best stays the model it began from when no epoch beats it on held-out data
            summary["eval"], best = self.evaluate(step, best, runlog)
        try:
            with StopFlag() as stop:
                while step < cfg.steps:
                    tick = time.perf_counter()
                    values = self.train_step(batches, step)
                    step += 1
                    values["samples_per_s"] = cfg.batch_size * cfg.grad_accum * env.world_size / (
                        time.perf_counter() - tick)
                    values["lr"] = self.scheduler.get_last_lr()[0]
                    runlog.progress(values)
                    if step % max(1, cfg.log_every) == 0 or step == cfg.steps:
                        runlog.write(step, values)
                    if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps:
                        summary["eval"], best = self.evaluate(step, best, runlog)
                    interrupted = any_rank(env, stop.raised)
                    if interrupted or step == cfg.steps or (cfg.save_every and step % cfg.save_every == 0):
                        summary["checkpoint"] = self.save(step, best)
                    if interrupted:
                        runlog.message(f"interrupted: checkpoint written at step {step}; "
                                       f"continue with --resume {cfg.out}")
                        summary["interrupted"] = True
                        break
        finally:
            runlog.close()
        summary.update(step=step, best_rsum=best, skipped=dict(self.data.report.skipped))
        return summary

    def train_step(self, batches, step: int) -> dict[str, float]:
        cfg = self.cfg
        totals: dict[str, float] = defaultdict(float)
        for micro in range(cfg.grad_accum):
            batch = next(batches)
            for reason in batch["skipped"]:
                self.data.report.skip(reason)
            inputs = {"pixels": batch["pixels"].to(self.env.device, non_blocking=True), "texts": batch["texts"]}
            # frame_owner: video pairs bring all their frames; item_keys: a photo's other captions are positives
            for key in ("visual_tokens", "frame_owner", "item_keys"):
                if key in batch:
                    inputs[key] = batch[key].to(self.env.device)
            last = micro == cfg.grad_accum - 1
            sync = contextlib.nullcontext() if last or not self.env.distributed else self.wrapped.no_sync()
            with sync:
                with self.autocast():  # one momentum (EMA) update per optimiser step, not per micro-batch
                    out = self.wrapped(inputs, update_momentum=micro == 0)
                loss = out["loss"] / cfg.grad_accum
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            for key in LOSS_KEYS:
                totals[key] += float(out[key].detach()) / cfg.grad_accum
            for hook in self.hooks:
                hook(step, batch, out)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if cfg.optim.clip_grad > 0:
            totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(self.params, cfg.optim.clip_grad))
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return dict(totals)

    def evaluate(self, step: int, best: float | None, runlog: RunLog):
        """Rank 0 scores the validation set; a better rsum replaces RUN/best."""
        metrics = None
        if self.env.is_main and self.data.val_records:
            metrics = evaluate_retrieval(self.model, self.data.val_records, batch_size=max(self.cfg.batch_size, 32),
                                         frames=self.cfg.data.frames)
            runlog.write(step, metrics, prefix="eval")
            runlog.message(f"step {step}: " + ", ".join(f"{k} {metrics[k]:.1f}" for k in
                                                         ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r5", "rsum")))
            if best is None or metrics["rsum"] > best:
                best = metrics["rsum"]
                folder = best_dir(self.cfg.out)
                self.model.save_pretrained(folder)
                self.cfg.save(folder)  # so `cots eval --model RUN` finds the run's validation split
                (folder / BEST_METRICS).write_text(json.dumps({"step": step, **metrics}, indent=1) + "\n")
        barrier(self.env)
        return metrics, best

    def save(self, step: int, best: float | None):
        path = None
        rng = gather_objects(self.env, capture_rng())  # every rank's streams: a resume continues each
        if self.env.is_main:
            path = save_checkpoint(self.cfg.out, self.model, self.optimizer, self.scheduler, self.scaler, step,
                                   self.cfg, extra={"best_rsum": best}, rng=rng)
        barrier(self.env)
        return str(path) if path else None


def run_cli(cfg: TrainConfig, resume: str | None = None) -> int:
    """``cots train pretrain|finetune``: exit 0 when done, 130 when interrupted (checkpoint written)."""
    summary = main(cfg, resume=resume, log=lambda text: print(text, file=sys.stderr))
    best = best_dir(cfg.out) / BEST_METRICS
    if cfg.mode == "finetune" and not summary["interrupted"] and best.is_file():
        # a fine-tune's result is its best validated epoch (what `--model RUN` loads too)
        metrics = json.loads(best.read_text())
        print(json.dumps({**metrics, "step": summary["step"], "best_step": metrics["step"],
                          "checkpoint": str(best.parent)}))
    elif summary["eval"] and summary["checkpoint"]:
        print(json.dumps({"step": summary["step"], "checkpoint": summary["checkpoint"], **summary["eval"]}))
    return 130 if summary["interrupted"] else 0
