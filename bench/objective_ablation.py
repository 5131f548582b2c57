"""Which COTS objectives earn their place in a fine-tune of cots-lite on real captioned photos (issue 29).

    .venv/bin/python bench/objective_ablation.py [--data DIR] [--seeds 5] [--rows NAME ...] [--json OUT.jsonl]

The setting people use: `cots train finetune --from cots-lite` on their own captioned photos, here the
benchmark of bench/quality_data.py (325 training photos, of which 15 % are held out to pick the best epoch, as
the trainer does). Every row runs the model's real `training_step` (momentum projections, queue, AMF, the
losses of cots_core.losses) and the trainer's optimiser and schedule, on the cached image-tower features of
bench/quality_finetune.py (the image tower is frozen in every row: its pooled features are looked up). The
text tower is either frozen too (cached features) or runs live with its last `text_layers` blocks training,
which is what the token level needs to mean anything: with both towers frozen, CMLM trains only its own head
and the bridge it feeds, neither of which is on the embedding path. CMVM does not apply to cots-lite (its
EfficientNet has no patch tokens to mask); it is measured in the synthetic pre-training ablation
(bench/ablation.py). Every row ends with the caption memory built as the trainer builds it, so the rows
differ only by objective; scores are given with and without it.

Each row is trained once per seed and scored on the validation split (to choose) and the test split (to
report): mean and standard deviation over seeds of rsum and text->image R@1 / R@5.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.quality_data import default_out  # noqa: E402
from bench.quality_finetune import VIEWS, CachedTower, evaluate, tower_features  # noqa: E402
from cots_core import load_model, losses  # noqa: E402
from cots_core.heads import CaptionMemory  # noqa: E402
from cots_core.momentum import FeatureQueue  # noqa: E402
from trainer import caption_memory  # noqa: E402
from trainer.config import OptimConfig  # noqa: E402
from trainer.optim import build_optimizer  # noqa: E402

OFF = dict(use_mcl=True, use_mvlm=False, use_cmlm=False, use_kl=False, use_amf=False)
RECIPE = dict(epochs=10, batch_size=32, lr=3e-4, tower_lr_scale=1.0, warmup=10, holdout=0.15, queue=4096,
              text_layers=0, learn_temperature=False, temperature=None, loss={}, kl_form="paper", kl_warmup=0)
ROWS: dict[str, dict] = {
    "zero-shot cots-lite + caption memory (no training)": dict(loss=OFF, epochs=0),
    "MCL alone": dict(loss=OFF),
    "MCL + KL (queue-only form, before issue 29)": dict(loss={**OFF, "use_kl": True}, kl_form="queue-only"),
    "MCL + KL": dict(loss={**OFF, "use_kl": True}),
    "MCL + AMF": dict(loss={**OFF, "use_amf": True}),
    "MCL + KL + AMF (the default before issue 29)": dict(loss={**OFF, "use_kl": True, "use_amf": True}),
    "MCL, text tower's last 2 blocks train": dict(loss=OFF, text_layers=2, tower_lr_scale=0.1),
    "MCL + CMLM, text tower's last 2 blocks train": dict(loss={**OFF, "use_mvlm": True, "use_cmlm": True},
                                                         text_layers=2, tower_lr_scale=0.1),
    "all (MCL + CMLM + KL + AMF), text tower's last 2 blocks train": dict(
        loss={**OFF, "use_mvlm": True, "use_cmlm": True, "use_kl": True, "use_amf": True},
        text_layers=2, tower_lr_scale=0.1),
}
# Why an objective costs recall, and the recipe: chosen on the validation split (bench/RESULTS.md)
KL = {**OFF, "use_kl": True}
PROBES: dict[str, dict] = {
    "MCL + KL, w_kl 0.3": dict(loss={**KL, "w_kl": 0.3}),
    "MCL + KL, w_kl 0.1": dict(loss={**KL, "w_kl": 0.1}),
    "MCL + KL, queue 256 (smaller than the 276 training pairs)": dict(loss=KL, queue=256),
    "MCL alone, queue 256": dict(loss=OFF, queue=256),
    "MCL + AMF, k 3": dict(loss={**OFF, "use_amf": True, "amf_k": 3.0}),
    "MCL alone, learned temperature": dict(loss=OFF, learn_temperature=True),
    "MCL + KL, learned temperature": dict(loss=KL, learn_temperature=True),
    "MCL, text tower's last 2 blocks at the heads' rate": dict(loss=OFF, text_layers=2, tower_lr_scale=1.0),
    "MCL, whole text tower at 0.1x": dict(loss=OFF, text_layers=6, tower_lr_scale=0.1),
    "MCL + CMLM 0.3, text tower's last 2 blocks train": dict(loss={**OFF, "use_mvlm": True, "use_cmlm": True,
                                                                     "w_token": 0.3}, text_layers=2, tower_lr_scale=0.1),
    "MCL + KL 0.1 + AMF (the fine-tune default from issue 29)": dict(loss={**KL, "w_kl": 0.1, "use_amf": True}),
    "MCL + KL, KL ramped in over the first 3 epochs (while the queue fills)": dict(loss=KL, kl_warmup=3),
    "MCL alone, 20 epochs": dict(loss=OFF, epochs=20),
    "MCL alone, lr 1e-3": dict(loss=OFF, lr=1e-3),
}
ROWS.update(PROBES)


def queue_only_kl(v, t, v_m, t_m, Q_I, Q_T, tau):  # noqa: N803
    """The task-level KL as the project had it before issue 29: distributions over the queue alone."""
    if v.shape[0] == 0 or Q_I.shape[0] == 0:
        return losses._zero_like(v, t)
    log_p_i2t = F.log_softmax(v @ Q_T.t() / tau, dim=1)
    log_p_t2i = F.log_softmax(t @ Q_I.t() / tau, dim=1)
    p_i2t, p_t2i = log_p_i2t.exp(), log_p_t2i.exp()
    return ((p_i2t * (log_p_i2t - log_p_t2i)).sum(1) + (p_t2i * (log_p_t2i - log_p_i2t)).sum(1)).mean()


class LiveText:
    """The text side of a run whose text tower trains: token ids of every caption, features on demand."""

    def __init__(self, model, captions: dict[str, list[str]]):
        self.tokens = {split: model.tokenize(texts) for split, texts in captions.items()}

    def features(self, m, split: str, rows: list[int] | None = None) -> torch.Tensor:
        tokens = self.tokens[split]
        ids, mask = tokens["input_ids"], tokens["attention_mask"]
        if rows is not None:
            ids, mask = ids[rows], mask[rows]
        with torch.no_grad():
            was = m.text_encoder.training
            m.text_encoder.eval()
            out = torch.cat([m.text_encoder(ids[i:i + 64], mask[i:i + 64]).global_feature
                             for i in range(0, len(ids), 64)])
            m.text_encoder.train(was)
        return out


def finetune(model, feats: dict, live: LiveText, seed: int, **recipe) -> tuple:
    """A copy of ``model`` fine-tuned as `cots train finetune` would with ``recipe``; returns (model, every
    split's features as this model's text tower sees them, best step, held-out rows, training rows)."""
    r = {**RECIPE, **recipe}
    torch.manual_seed(seed)
    rng = random.Random(seed)
    m = copy.deepcopy(model)
    queue = {"learn_temperature": r["learn_temperature"], **({"temperature": r["temperature"]}
                                                             if r["temperature"] else {})}
    m.config = m.config.replace(loss=r["loss"], queue=queue)
    m.temperature = torch.nn.Parameter(torch.tensor(float(m.config.queue.temperature)))
    m.image_encoder = CachedTower()
    m.queue = FeatureQueue(r["queue"], m.config.embed_dim)
    for name in ("image_encoder_m", "text_encoder_m", "image_projection_m", "text_projection_m"):
        m._modules.pop(name, None)
    m.requires_grad_(True)
    m.temperature.requires_grad_(r["learn_temperature"])
    m.image_tokenizer.requires_grad_(False)
    if r["text_layers"]:
        m.text_encoder.requires_grad_(False)
        for block in m.text_encoder.model.encoder.layer[-r["text_layers"]:]:
            block.requires_grad_(True)
    else:
        m.text_encoder = CachedTower(feats["train"]["text"])
    captions = feats["train"]["captions"]
    order = list(range(len(captions)))
    rng.shuffle(order)
    n_hold = round(r["holdout"] * len(order))
    holdout, train = sorted(order[:n_hold]), order[n_hold:]

    def split_view(name: str, rows: list[int] | None = None) -> dict:
        split = feats[name]
        text = live.features(m, name, rows) if r["text_layers"] else (
            split["text"] if rows is None else split["text"][rows])
        if rows is None:
            return {**split, "text": text}
        return {"eval": split["eval"][rows], "text": text, "captions": [split["captions"][i] for i in rows]}

    def batch_of(index: list[int]) -> dict:
        views = feats["train"]["views"][index, torch.randint(VIEWS, (len(index),))]
        if r["text_layers"]:
            tokens = live.tokens["train"]
            ids, mask = tokens["input_ids"][index], tokens["attention_mask"][index]
            width = int(mask.sum(1).max())  # the batch padded to its longest caption, as the trainer does
            ids, mask = ids[:, :width], mask[:, :width]
        else:  # the cached text tower looks the caption's feature up by its row
            ids, mask = torch.tensor(index)[:, None], torch.ones(len(index), 1, dtype=torch.long)
        return {"pixels": views, "input_ids": ids, "attention_mask": mask, "texts": [captions[i] for i in index]}

    per_epoch = math.ceil(len(train) / r["batch_size"])
    steps = round(r["epochs"] * per_epoch)
    optimizer, scheduler = build_optimizer(m, OptimConfig(lr=r["lr"], warmup_steps=r["warmup"],
                                                          tower_lr_scale=r["tower_lr_scale"]), max(1, steps))
    trained = [p for p in m.parameters() if p.requires_grad]
    m.train()
    # the starting model is scored too: it stays when no epoch beats it on the held-out photos (trainer.loop)
    best, best_step, step = evaluate(m, split_view("train", holdout))["rsum"], 0, 0
    best_state = copy.deepcopy(m.state_dict())
    old_kl = mock.patch.object(losses, "kl_alignment_loss", queue_only_kl) if r["kl_form"] == "queue-only" \
        else contextlib.nullcontext()
    full_kl = m.config.loss.w_kl
    with old_kl:
        while step < steps:
            rng.shuffle(train)
            for start in range(0, len(train), r["batch_size"]):
                if r["kl_warmup"]:  # w_kl ramps linearly from 0 over the first kl_warmup epochs
                    ramp = min(1.0, step / (r["kl_warmup"] * per_epoch))
                    m.config = m.config.replace(loss={"w_kl": full_kl * ramp})
                m.training_step(batch_of(train[start:start + r["batch_size"]]))["loss"].backward()
                torch.nn.utils.clip_grad_norm_(trained, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                if step >= steps:
                    break
            if step % per_epoch == 0 or step >= steps:
                score = evaluate(m, split_view("train", holdout))["rsum"]
                if score > best:
                    best, best_step, best_state = score, step, copy.deepcopy(m.state_dict())
    m.load_state_dict(best_state)
    m.eval()
    seen = {name: split_view(name) for name in ("train", "val", "test", "photos23")}
    return m, seen, best_step, holdout, train


def with_memory(m, seen: dict, holdout: list[int], train: list[int]) -> None:
    """The caption memory as trainer.caption_memory builds it: from the training part, kept if the held-out
    rsum does not fall by more than one item can move it, then from every captioned photo."""
    def memory(rows: list[int]) -> CaptionMemory:
        with torch.no_grad():
            values = F.normalize(m.text_projection(seen["train"]["text"][rows]).float(), dim=-1)
            return CaptionMemory.build(seen["train"]["eval"][rows], values, caption_memory.TEMPERATURE,
                                       caption_memory.NULL_SIMILARITY, caption_memory.SCALE)

    hold = {"eval": seen["train"]["eval"][holdout], "text": seen["train"]["text"][holdout],
            "captions": [seen["train"]["captions"][i] for i in holdout]}
    without = evaluate(m, hold)["rsum"]
    m.caption_memory = memory(train)
    if evaluate(m, hold)["rsum"] >= without - 600 / len(holdout):
        m.caption_memory = memory(sorted(train + holdout))
    else:
        m.caption_memory = CaptionMemory(seen["train"]["eval"].shape[1], m.config.embed_dim)


def summarise(rows: list[dict]) -> dict:
    keys = rows[0].keys()
    digits = {"tau": 4}
    return {k: (round(statistics.mean(r[k] for r in rows), digits.get(k, 1)),
                round(statistics.stdev(r[k] for r in rows), digits.get(k, 1)) if len(rows) > 1 else 0.0)
            for k in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--rows", nargs="*", help="names of ROWS to run (default: all)")
    parser.add_argument("--set", nargs="*", default=[], help="recipe overrides for every row, KEY=JSON")
    parser.add_argument("--label", default="", help="appended to each row's name in the output")
    parser.add_argument("--json", type=Path, help="append one JSON line per row here")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = args.data or default_out()
    model = load_model("cots-lite")
    feats = tower_features(model, data, data / "tower_features.pt")
    live = LiveText(model, {name: feats[name]["captions"] for name in ("train", "val", "test", "photos23")})
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    for name, row in ROWS.items():
        if args.rows and name not in args.rows:
            continue
        recipe = {**row, **overrides}
        results, started = [], time.time()
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            m, seen, best_step, *parts = finetune(model, feats, live, seed, **recipe)
            scores = {"best_step": best_step, "tau": float(m.contrastive_temperature())}
            for split in ("val", "test", "photos23"):
                s = evaluate(m, seen[split])
                scores.update({f"{split}_nomem_rsum": s["rsum"], f"{split}_nomem_t2i_r1": s["t2i_r1"]})
            with_memory(m, seen, *parts)
            for split in ("val", "test", "photos23"):
                s = evaluate(m, seen[split])
                scores.update({f"{split}_rsum": s["rsum"], f"{split}_t2i_r1": s["t2i_r1"],
                               f"{split}_t2i_r5": s["t2i_r5"]})
            results.append(scores)
        line = {"row": name + args.label, "recipe": recipe, "seeds": args.seeds, "minutes": round(
            (time.time() - started) / 60, 1), **summarise(results), "per_seed_test_rsum": [
            round(r["test_rsum"], 1) for r in results]}
        print(json.dumps(line), flush=True)
        if args.json:
            with args.json.open("a") as out:
                out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
