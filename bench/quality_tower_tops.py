"""Should the towers' top layers train? The fine-tuning harness of bench/quality_finetune.py with the last
layer(s) of the MiniLM text tower and/or the last block and head of the EfficientNet tower trainable, run on
cached inputs to those layers (so a step costs little more than a frozen one). Heads only, no caption memory:
this is the "towers" row of the recipe's ablation (bench/RESULTS.md, issue 10).

    .venv/bin/python bench/quality_tower_tops.py SEEDS val|test [VARIANT ...]
"""

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
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.lite_quality import load_eval_set  # noqa: E402
from bench.quality_data import default_out  # noqa: E402
from bench.quality_finetune import (  # noqa: E402
    DEFAULT,
    VIEWS,
    CachedTower,
    evaluate,
    mean_scores,
    optimizer_step,
    read_split,
)
from cots_core import load_model  # noqa: E402
from cots_core.momentum import FeatureQueue  # noqa: E402
from trainer.config import OptimConfig  # noqa: E402
from trainer.optim import build_optimizer  # noqa: E402

KT = 2  # text hidden states are cached before the last KT layers
CACHE = Path("/tmp/cots_tower_tops_cache.pt")


@torch.inference_mode()
def build_cache(model, data):
    if CACHE.is_file():
        return torch.load(CACHE, weights_only=False)
    torch.manual_seed(0)
    im = model.image_encoder.model

    def prehead(images, transform):  # input to blocks[-1]
        out = []
        for i in range(0, len(images), 32):
            x = torch.stack([transform(a) for a in images[i : i + 32]])
            t = im.blocks[:-1](im.bn1(im.conv_stem(x)))
            out.append(t)
        return torch.cat(out)

    def hidden(captions):
        tok = model.tokenize(captions)
        hs = model.text_encoder.model(
            input_ids=tok["input_ids"], attention_mask=tok["attention_mask"], output_hidden_states=True
        ).hidden_states
        return hs[len(hs) - 1 - KT], tok["attention_mask"]

    out = {}
    for split in ("train", "val", "test"):
        photos, caps = read_split(data / split)
        images = [Image.open(p).convert("RGB") for p in photos]
        h, msk = hidden(caps)
        out[split] = {"img": prehead(images, model.preprocess), "hid": h, "mask": msk}
        if split == "train":
            out[split]["views"] = torch.stack(
                [prehead(images, model.train_transform) for _ in range(VIEWS)], 1
            )
    photos, queries, owner = load_eval_set()
    h, msk = hidden(queries)
    out["photos23"] = {
        "img": prehead([Image.open(p).convert("RGB") for p in photos], model.preprocess),
        "hid": h,
        "mask": msk,
    }
    torch.save(out, CACHE)
    return out


class TopImage(nn.Module):
    def __init__(self, model, last_block):
        super().__init__()
        im = model.image_encoder.model
        self.block = copy.deepcopy(im.blocks[-1])
        self.conv_head = copy.deepcopy(im.conv_head)
        self.bn2 = copy.deepcopy(im.bn2)
        self.pool = im.global_pool
        if not last_block:
            self.block.requires_grad_(False)

    def train(self, mode=True):
        super().train(False)  # BN statistics stay frozen
        return self

    def forward(self, x, token_mask=None):
        return SimpleNamespace(global_feature=self.pool(self.bn2(self.conv_head(self.block(x)))))


class TopText(nn.Module):
    def __init__(self, model, layers, hid, mask):
        super().__init__()
        enc = model.text_encoder.model.encoder.layer
        self.layers = nn.ModuleList(copy.deepcopy(enc[len(enc) - KT :]))
        for layer in self.layers[: KT - layers]:
            layer.requires_grad_(False)
        self.hid, self.mask = hid, mask

    def train(self, mode=True):
        super().train(False)  # a frozen tower runs as at inference (no dropout), as the trainer does
        return self

    def run(self, h, mask):
        add = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.layers:
            h = layer(h, attention_mask=add)
            h = h[0] if isinstance(h, tuple) else h
        w = mask.unsqueeze(-1).float()
        return (h * w).sum(1) / w.sum(1)

    def forward(self, input_ids, attention_mask=None):
        idx = input_ids[:, 0]
        return SimpleNamespace(global_feature=self.run(self.hid[idx], self.mask[idx]))


def features(m, c):
    with torch.no_grad():
        img = m.image_encoder(c["img"]).global_feature if isinstance(m.image_encoder, TopImage) else None
        txt = m.text_encoder.run(c["hid"], c["mask"]) if isinstance(m.text_encoder, TopText) else None
    return img, txt


def split_view(m, feats, cache, s):
    d = dict(feats[s])
    img, txt = features(m, cache[s])
    if img is not None:
        d["eval"] = img
    if txt is not None:
        d["text"] = txt
    return d


def finetune(model, feats, cache, seed, image_top=None, text_layers=0, tower_lr_scale=0.1, **recipe):
    r = {**DEFAULT, **recipe}
    torch.manual_seed(seed)
    rng = random.Random(seed)
    m = copy.deepcopy(model)
    m.config = m.config.replace(loss={"use_mvlm": False})
    tr = cache["train"]
    if image_top is None:
        m.image_encoder = m.image_encoder_m = CachedTower()
        views = feats["train"]["views"]
    else:
        m.image_encoder = TopImage(model, image_top == "block")
        m.image_encoder_m = copy.deepcopy(m.image_encoder).requires_grad_(False)
        views = tr["views"]
    if text_layers:
        m.text_encoder = TopText(model, text_layers, tr["hid"], tr["mask"])
        m.text_encoder_m = copy.deepcopy(m.text_encoder).requires_grad_(False)
    else:
        m.text_encoder = m.text_encoder_m = CachedTower(feats["train"]["text"])
    m.queue = FeatureQueue(r["queue"], m.config.embed_dim)
    m.requires_grad_(True)
    if isinstance(m.text_encoder, TopText):
        for layer in m.text_encoder.layers[: KT - text_layers]:
            layer.requires_grad_(False)
    if isinstance(m.image_encoder, TopImage) and image_top != "block":
        m.image_encoder.block.requires_grad_(False)
    for twin in (m.image_projection_m, m.text_projection_m, m.image_encoder_m, m.text_encoder_m):
        twin.requires_grad_(False)
    m.image_projection.residual.requires_grad_(False)
    captions = feats["train"]["captions"]
    order = list(range(len(captions)))
    rng.shuffle(order)
    n_hold = round(r["holdout"] * len(order))
    holdout, train = sorted(order[:n_hold]), order[n_hold:]

    def hold_split():
        d = {"captions": [captions[i] for i in holdout]}
        img, txt = features(
            m, {"img": tr["img"][holdout], "hid": tr["hid"][holdout], "mask": tr["mask"][holdout]}
        )
        d["eval"] = img if img is not None else feats["train"]["eval"][holdout]
        d["text"] = txt if txt is not None else feats["train"]["text"][holdout]
        return d

    per_epoch = math.ceil(len(train) / r["batch_size"])
    steps = max(1, round(r["epochs"] * per_epoch))
    optimizer, scheduler = build_optimizer(
        m,
        OptimConfig(
            lr=r["lr"],
            warmup_steps=r["warmup"],
            weight_decay=r["weight_decay"],
            tower_lr_scale=tower_lr_scale,
        ),
        steps,
    )
    m.train()
    best, best_state, best_step, step = None, None, 0, 0
    def keys(k):
        return "projection" in k or k.startswith(("image_encoder.", "text_encoder."))
    while step < steps:
        rng.shuffle(train)
        for start in range(0, len(train), r["batch_size"]):
            index = train[start : start + r["batch_size"]]
            v = views[index, torch.randint(VIEWS, (len(index),))]
            batch = {
                "pixels": v,
                "input_ids": torch.tensor(index)[:, None],
                "attention_mask": torch.ones(len(index), 1, dtype=torch.long),
                "texts": [captions[i] for i in index],
            }
            optimizer_step(m, batch, optimizer, scheduler)
            step += 1
            if step >= steps:
                break
        if step % per_epoch == 0 or step >= steps:
            sc = evaluate(m, hold_split())["rsum"]
            if best is None or sc > best:
                best, best_step = sc, step
                best_state = copy.deepcopy({k: v for k, v in m.state_dict().items() if keys(k)})
    m.load_state_dict(best_state, strict=False)
    return m.eval(), best_step


VARIANTS = {
    "default (towers frozen)": {},
    "text: last layer, tower lr x0.1": {"text_layers": 1},
    "text: last 2 layers, x0.1": {"text_layers": 2},
    "text: last layer, x1": {"text_layers": 1, "tower_lr_scale": 1.0},
    "image: conv_head, x0.1": {"image_top": "head"},
    "image: last block + head, x0.1": {"image_top": "block"},
    "both: text last layer + image head, x0.1": {"text_layers": 1, "image_top": "head"},
    "image: conv_head, x1": {"image_top": "head", "tower_lr_scale": 1.0},
    "image: last block + head, x1": {"image_top": "block", "tower_lr_scale": 1.0},
}
if __name__ == "__main__":
    torch.set_num_threads(2)
    seeds = int(sys.argv[1])
    split = sys.argv[2]
    names = sys.argv[3:]
    model = load_model("cots-lite")
    data = default_out()
    feats = torch.load(data / "tower_features.pt", weights_only=False)
    cache = build_cache(model, data)
    for name, rec in VARIANTS.items():
        if names and name not in names:
            continue
        rows, prow, steps = [], [], []
        for seed in range(seeds):
            t, bs = finetune(model, feats, cache, seed, **rec)
            rows.append(evaluate(t, split_view(t, feats, cache, split)))
            prow.append(evaluate(t, split_view(t, feats, cache, "photos23")))
            steps.append(bs)
        s, p = mean_scores(rows), mean_scores(prow)
        print(
            json.dumps(
                {
                    "variant": name,
                    **{f"{k}": round(v, 1) for k, v in s.items() if k in ("t2i_r1", "t2i_r5", "i2t_r1")},
                    "min_r1": min(r["t2i_r1"] for r in rows),
                    "p23": [round(p[k], 1) for k in ("t2i_r1", "t2i_r5", "i2t_r1")],
                    "steps": steps,
                }
            ),
            flush=True,
        )
