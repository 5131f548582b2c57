"""Ablation of the cots-lite fine-tuning recipe on the captioned-photo benchmark (bench/quality_data.py).

    .venv/bin/python bench/quality_finetune.py [--data DIR] [--seeds 5] [--split val|test] [--variants ...]

With frozen towers, a fine-tune only trains what sits on top of the towers' pooled features, so the towers
run once: each training photo's pooled EfficientNet feature is cached for 4 augmented views (the model's
own train_transform) and every caption's pooled MiniLM feature once. Each variant then runs the model's
real `training_step` (momentum projections, queue, AMF, multi-positive MCL) and the trainer's real optimiser
and schedule, with stand-in towers that look the cached features up. Like `cots train finetune`, it holds out
15 % of the training photos and keeps the epoch with the best rsum on them. Scores are the mean over seeds of
text->image R@1/R@5 on the chosen split (identical captions answer for each other: trainer.metrics) and on
the 23-photo set (tests/data/real_photos). Per source (the benchmark's manifest.json), the queries of that
source's photos are ranked against the whole split's gallery (`t2i_r1@gcompris`, ...). The tower features
are cached once in the data folder (`tower_features.pt`). Towers that train cannot be cached: see
bench/RESULTS.md for those runs through the CLI.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lite_quality import load_eval_set  # noqa: E402
from bench.quality_data import default_out  # noqa: E402
from cots_core import load_model  # noqa: E402
from cots_core.heads import CaptionMemory, image_embedding  # noqa: E402
from cots_core.momentum import FeatureQueue  # noqa: E402
from trainer import caption_memory  # noqa: E402
from trainer.config import OptimConfig  # noqa: E402
from trainer.metrics import recall_at, relevance_matrix, retrieval_metrics, text_to_item_ranks  # noqa: E402
from trainer.optim import build_optimizer  # noqa: E402

VIEWS = 4


def read_split(folder: Path) -> tuple[list[Path], list[str]]:
    photos = sorted(folder.glob("*.jpg"))
    return photos, [p.with_suffix(".txt").read_text(encoding="utf-8").strip() for p in photos]


class CachedTower(nn.Module):
    """Stands in for a frozen tower: 'pixels' are pooled features; token ids index a feature table."""

    def __init__(self, table: torch.Tensor | None = None):
        super().__init__()
        self.table = table

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SimpleNamespace:
        return SimpleNamespace(global_feature=x if self.table is None else self.table[x[:, 0]])


@torch.inference_mode()
def tower_features(model, data: Path, cache: Path) -> dict:
    if cache.is_file():
        return torch.load(cache, weights_only=False)
    torch.manual_seed(0)

    def pooled(images: list[Image.Image], transform) -> torch.Tensor:
        rows = [model.image_encoder(torch.stack([transform(im) for im in images[i:i + 32]])).global_feature
                for i in range(0, len(images), 32)]
        return torch.cat(rows)

    def texts(captions: list[str]) -> torch.Tensor:
        tokens = model.tokenize(captions)
        return model.text_encoder(tokens["input_ids"], tokens["attention_mask"]).global_feature

    manifest = json.loads((data / "manifest.json").read_text()) if (data / "manifest.json").is_file() else {}
    out = {}
    for split in ("train", "val", "test"):
        photos, captions = read_split(data / split)
        images = [Image.open(p).convert("RGB") for p in photos]
        out[split] = {"eval": pooled(images, model.preprocess), "text": texts(captions), "captions": captions,
                      "source": [manifest.get(p.stem, {}).get("source", "tuxpaint") for p in photos]}
        if split == "train":
            out[split]["views"] = torch.stack([pooled(images, model.train_transform) for _ in range(VIEWS)], 1)
    photos, queries, owner = load_eval_set()
    out["photos23"] = {"eval": pooled([Image.open(p).convert("RGB") for p in photos], model.preprocess),
                       "text": texts(queries), "captions": queries, "owner": owner}
    torch.save(out, cache)
    return out


def evaluate(model, split: dict) -> dict[str, float]:
    with torch.no_grad():
        was = model.training
        model.eval()
        image = image_embedding(model.image_projection, model.caption_memory, split["eval"])
        text = F.normalize(model.text_projection(split["text"]).float(), dim=-1)
        model.train(was)
    owner = split.get("owner", list(range(len(split["captions"]))))
    texts = None if "owner" in split else split["captions"]
    sim = image @ text.t()
    m = retrieval_metrics(sim, owner, texts)
    scores = {k: m[k] for k in ("t2i_r1", "t2i_r5", "i2t_r1", "rsum")}
    sources = split.get("source", [])
    if len(set(sources)) > 1:  # each source's queries against the whole gallery
        ranks = text_to_item_ranks(sim, owner, relevance_matrix(owner, sim.shape[0], texts))
        for source in sorted(set(sources)):
            mine = [j for j, s in enumerate(sources) if s == source]
            scores.update({f"t2i_r1@{source}": recall_at(ranks[mine], 1), f"t2i_r5@{source}": recall_at(ranks[mine], 5)})
    return scores


DEFAULT = dict(epochs=10, batch_size=32, lr=3e-4, warmup=10, residual=False, multi_positive=True,
               queue=4096, train_text_projection=True, train_classifier=True, select_best=True, holdout=0.15,
               weight_decay=0.02, temperature=None, residual_scale=None, train_sources=None,
               blend=None, train_heads=True, memory=True, memory_center=True,
               memory_settings=(caption_memory.TEMPERATURE, caption_memory.NULL_SIMILARITY, caption_memory.SCALE))


def remember(m, feats: dict, rows: list[int], r: dict) -> CaptionMemory:
    """The caption memory of training rows ``rows`` from the cached features, as trainer.caption_memory
    builds it (pooled feature of the eval view, caption embedding through the tuned text projection)."""
    with torch.no_grad():
        captions = F.normalize(m.text_projection(feats["train"]["text"][rows]).float(), dim=-1)
        memory = CaptionMemory.build(feats["train"]["eval"][rows], captions, *r["memory_settings"])
    if not r["memory_center"]:
        memory.keys.copy_(F.normalize(feats["train"]["eval"][rows].float(), dim=-1))
        memory.center.zero_()
    return memory


def optimizer_step(m, batch: dict, optimizer, scheduler) -> None:
    """One step as trainer.loop takes it: the model's training_step, clipping at 1, AdamW, schedule."""
    m.training_step(batch)["loss"].backward()
    torch.nn.utils.clip_grad_norm_([p for p in m.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def finetune(model, feats: dict, seed: int, **recipe) -> tuple[nn.Module, int]:
    """Train the heads of a copy of ``model`` as `cots train finetune` would; returns (model, best step)."""
    r = {**DEFAULT, **recipe}
    torch.manual_seed(seed)
    rng = random.Random(seed)
    m = copy.deepcopy(model)
    m.config = m.config.replace(loss={"use_mvlm": False})  # as trainer.build does for cots-lite
    if r["temperature"]:
        m.config = m.config.replace(queue={"temperature": r["temperature"]})
    m.image_encoder = m.image_encoder_m = CachedTower()
    m.text_encoder = m.text_encoder_m = CachedTower(feats["train"]["text"])
    m.queue = FeatureQueue(r["queue"], m.config.embed_dim)
    m.requires_grad_(True)
    for twin in (m.image_projection_m, m.text_projection_m):
        twin.requires_grad_(False)
    if r["residual_scale"] is not None:
        m.image_projection.residual_scale = r["residual_scale"]
    if not r["residual"]:
        m.image_projection.residual.requires_grad_(False)
    if not r["train_text_projection"]:
        m.text_projection.requires_grad_(False)
    if not r["train_classifier"]:
        m.image_projection.classifier.requires_grad_(False)
    captions = feats["train"]["captions"]
    sources = feats["train"]["source"]
    order = [i for i in range(len(captions)) if r["train_sources"] is None or sources[i] in r["train_sources"]]
    rng.shuffle(order)
    n_hold = round(r["holdout"] * len(order)) if r["select_best"] else 0
    holdout, train = sorted(order[:n_hold]), order[n_hold:]
    hold = {"eval": feats["train"]["eval"][holdout], "text": feats["train"]["text"][holdout],
            "captions": [captions[i] for i in holdout]}
    per_epoch = math.ceil(len(train) / r["batch_size"])
    steps = max(1, round(r["epochs"] * per_epoch)) if r["train_heads"] else 0
    optimizer, scheduler = build_optimizer(m, OptimConfig(lr=r["lr"], warmup_steps=r["warmup"],
                                                          weight_decay=r["weight_decay"]), steps)
    m.train()
    best, best_state, best_step = None, None, 0
    step = 0
    while step < steps:
        rng.shuffle(train)
        for start in range(0, len(train), r["batch_size"]):
            index = train[start:start + r["batch_size"]]
            views = feats["train"]["views"][index, torch.randint(VIEWS, (len(index),))]
            batch = {"pixels": views, "input_ids": torch.tensor(index)[:, None],
                     "attention_mask": torch.ones(len(index), 1, dtype=torch.long)}
            if r["multi_positive"]:
                batch["texts"] = [captions[i] for i in index]
            optimizer_step(m, batch, optimizer, scheduler)
            step += 1
            if step >= steps:
                break
        if n_hold and (step % per_epoch == 0 or step >= steps):
            score = evaluate(m, hold)["rsum"]
            if best is None or score > best:
                best, best_step = score, step
                best_state = copy.deepcopy({k: v for k, v in m.state_dict().items() if "projection" in k})
    if best_state is not None:
        m.load_state_dict(best_state, strict=False)
    if r["blend"] is not None:  # WiSE-FT: a weight-space average of the zero-shot and the fine-tuned heads
        start = model.state_dict()
        m.load_state_dict({k: torch.lerp(start[k].float(), v.float(), r["blend"]).to(v.dtype)
                           for k, v in m.state_dict().items() if "projection" in k and v.is_floating_point()
                           and k in start}, strict=False)
    if r["memory"]:  # as trainer.caption_memory: kept unless it costs the held-out more than one item
        without = evaluate(m, hold)["rsum"] if n_hold else 0.0
        m.caption_memory = remember(m, feats, train, r)
        if not n_hold or evaluate(m, hold)["rsum"] >= without - 600 / n_hold:
            m.caption_memory = remember(m, feats, order, r)
        else:
            m.caption_memory = CaptionMemory(feats["train"]["eval"].shape[1], m.config.embed_dim)
    return m.eval(), best_step if n_hold else steps


VARIANTS = {
    "recipe (default)": {},
    "no caption memory (tuned heads only; the recipe before the memory)": {"memory": False},
    "caption memory on zero-shot heads (no training)": {"train_heads": False},
    "caption memory without centring": {"memory_center": False},
    "caption memory scale 1.0": {"memory_settings": (0.05, 0.2, 1.0)},
    "caption memory scale 0.25": {"memory_settings": (0.05, 0.2, 0.25)},
    "caption memory null 0.3": {"memory_settings": (0.05, 0.3, 0.5)},
    "caption memory null 0.1": {"memory_settings": (0.05, 0.1, 0.5)},
    "caption memory temperature 0.1": {"memory_settings": (0.1, 0.2, 0.5)},
    "caption memory temperature 0.03": {"memory_settings": (0.03, 0.2, 0.5)},
    "+ residual path, scale 0.01": {"residual": True, "residual_scale": 0.01},
    "+ residual path, scale 0.03": {"residual": True, "residual_scale": 0.03},
    "+ residual path, scale 0.1": {"residual": True, "residual_scale": 0.1},
    "single positive (same captions in the queue are negatives)": {"multi_positive": False},
    "lr 1e-4": {"lr": 1e-4},
    "lr 1e-3": {"lr": 1e-3},
    "5 epochs": {"epochs": 5},
    "20 epochs": {"epochs": 20},
    "last epoch (no held-out selection)": {"select_best": False},
    "queue 256": {"queue": 256},
    "text projection frozen": {"train_text_projection": False},
    "classifier frozen": {"train_classifier": False},
    "temperature 0.07": {"temperature": 0.07},
    "weights averaged with zero-shot, 0.5 (WiSE-FT)": {"blend": 0.5},
    "trained on the tuxpaint photos only (the first round's data)": {"train_sources": ("tuxpaint",)},
}


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--split", default="val", choices=["val", "test"])
    parser.add_argument("--variants", nargs="*", help="names of VARIANTS to run (default: all)")
    parser.add_argument("--cache", type=Path, help="tower features (default: DATA/tower_features.pt)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = args.data or default_out()
    model = load_model("cots-lite")
    feats = tower_features(model, data, args.cache or data / "tower_features.pt")
    base = {"split": evaluate(model, feats[args.split]), "photos23": evaluate(model, feats["photos23"])}
    print(json.dumps({"variant": "zero-shot", **{f"{k}_{m}": v for k in base for m, v in base[k].items()}}))
    for name, recipe in VARIANTS.items():
        if args.variants and name not in args.variants:
            continue
        split_rows, photo_rows, steps = [], [], []
        for seed in range(args.seeds):
            tuned, best_step = finetune(model, feats, seed, **recipe)
            split_rows.append(evaluate(tuned, feats[args.split]))
            photo_rows.append(evaluate(tuned, feats["photos23"]))
            steps.append(best_step)
        s, p = mean_scores(split_rows), mean_scores(photo_rows)
        print(json.dumps({"variant": name, **{f"split_{k}": round(v, 1) for k, v in s.items()},
                          **{f"photos23_{k}": round(v, 1) for k, v in p.items()},
                          "split_t2i_r1_min": min(r["t2i_r1"] for r in split_rows), "best_steps": steps}),
              flush=True)


if __name__ == "__main__":
    main()
