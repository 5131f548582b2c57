"""``cots eval``: which records to score, and which model, from the command line's few words."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from cots_core import load_model
from trainer.config import CONFIG_FILE, load_saved_config
from trainer.data import load_records, split_records
from trainer.data.media import SEARCH_MAX_FRAMES
from trainer.data.records import LoadReport, Record
from trainer.data.split import holdout_split
from trainer.evaluate import evaluate_retrieval
from trainer.memory_items import RememberedItems, remembered_items
from trainer.run_folders import resolve_model_dir

JSON_KEYS = ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "rsum", "median_rank", "mean_rank")


def eval_records(model_dir: str, data: str | None, split: str | None, holdout: float | None,
                 seed: int | None) -> tuple[list[Record], LoadReport]:
    """No --data: the run's own validation split (from the train_config.yaml beside the checkpoint).
    With --data: its ``split`` (default test, else val) when labelled, or a seeded held-out fraction, or all."""
    if data is None:
        folder = Path(model_dir)
        if not (folder / CONFIG_FILE).is_file():
            raise ValueError("give --data: this model has no training config to take a validation split from")
        cfg = load_saved_config(folder)
        records, report = load_records(cfg.data.train, cfg.data.verify, holdout=cfg.data.val_fraction, seed=cfg.seed)
        explicit = load_records(cfg.data.val)[0] if cfg.data.val else None
        _, val = split_records(records, explicit, cfg.data.val_fraction, cfg.seed, cfg.data.val_split)
        report.count(val)
        return val[: cfg.data.max_val_items], report
    records, report = load_records(data, holdout=holdout or 0.0, seed=seed or 0)
    if any(r.split for r in records):
        labels = {r.split for r in records}
        wanted = split or ("test" if "test" in labels else "val")
        records = [r for r in records if r.split == wanted]
    elif holdout:
        records = holdout_split(records, holdout, seed or 0)[1]
    report.count(records)
    return records, report


def without_remembered(records: list[Record], remembered: RememberedItems | None, model_dir: str,
                       own_split: bool) -> tuple[list[Record], int]:
    """``records`` less the items the model's caption memory holds (their own captions would find them, also
    in a copied folder: ``trainer.memory_items``), and how many were left out; ValueError when none is left."""
    if remembered is None:
        return records, 0
    kept = [r for r in records if not remembered.holds(r)]
    if not kept and records:
        where = "its validation items" if own_split else "every item of --data"
        raise ValueError(f"{model_dir} remembers {where} in its caption memory, so they no longer measure search "
                         "on unseen items: give --data with items it has not seen")
    return kept, len(records) - len(kept)


def run_eval(model: str, data: str | None, split: str | None = None, holdout: float | None = None,
             seed: int | None = None, batch_size: int = 64, frames: int = SEARCH_MAX_FRAMES,
             device: str = "auto") -> dict:
    """Metrics dict with the JSON keys (recalls in percent), plus n_items and n_captions."""
    model_dir = resolve_model_dir(model)
    remembered = remembered_items(model_dir)  # before the data is read: a model missing its record is refused
    records, report = eval_records(model_dir, data, split, holdout, seed)
    print(f"data: {report.summary()}", file=sys.stderr)
    records, left_out = without_remembered(records, remembered, model_dir, own_split=data is None)
    if left_out:
        print(f"left out {left_out} items that the model's caption memory holds (scored: {len(records)})",
              file=sys.stderr)
    if not records:
        raise ValueError("no evaluation items (check --data / --split)")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    cots = load_model(model_dir, device=device)
    metrics = evaluate_retrieval(cots, records, batch_size=batch_size, frames=frames)
    return {key: metrics[key] for key in JSON_KEYS} | {"n_items": metrics["n_items"],
                                                       "n_captions": metrics["n_captions"]}
