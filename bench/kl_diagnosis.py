"""Why the task-level KL costs recall in a fine-tune of cots-lite (issue 29): what it does to the two retrieval
distributions it aligns.

    .venv/bin/python bench/kl_diagnosis.py [--seeds 3]

For zero-shot cots-lite and for fine-tunes with MCL alone and with MCL + KL (bench/objective_ablation.py's
rows, same recipe), on the validation split's photos and captions (caption memory off, so only the trained
projections speak): for each pair, the paper's two distributions, each over the pair's own similarity then
the other pairs' (the queue's role), D_I2T = softmax(v . [t_i, t_j..] / tau) and D_T2I = softmax(t . [v_i,
v_j..] / tau). Printed per model: the mean probability each gives the true pair, their mean entropy, their
mean symmetric KL (what the loss minimises), and text->image R@1.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.objective_ablation import KL, OFF, LiveText, finetune  # noqa: E402
from bench.quality_data import default_out  # noqa: E402
from bench.quality_finetune import evaluate, tower_features  # noqa: E402
from cots_core import load_model  # noqa: E402


@torch.no_grad()
def distributions(m, split: dict) -> dict[str, float]:
    v = F.normalize(m.image_projection(split["eval"]).float(), dim=-1)
    t = F.normalize(m.text_projection(split["text"]).float(), dim=-1)
    tau = float(m.contrastive_temperature())
    sim = v @ t.t()  # sim[i, j]: image i, caption j; the pair's own entry is the diagonal

    def pair_first(rows: torch.Tensor) -> torch.Tensor:  # each row as [own pair, the others]
        n = rows.shape[0]
        others = rows[~torch.eye(n, dtype=torch.bool)].view(n, n - 1)
        return torch.cat([rows.diag()[:, None], others], dim=1)

    log_i2t = F.log_softmax(pair_first(sim) / tau, dim=1)
    log_t2i = F.log_softmax(pair_first(sim.t()) / tau, dim=1)
    p_i2t, p_t2i = log_i2t.exp(), log_t2i.exp()
    kl = ((p_i2t * (log_i2t - log_t2i)).sum(1) + (p_t2i * (log_t2i - log_i2t)).sum(1)) / 2
    return {"p_pair_i2t": float(p_i2t[:, 0].mean()), "p_pair_t2i": float(p_t2i[:, 0].mean()),
            "entropy_i2t": float(-(p_i2t * log_i2t).sum(1).mean()),
            "entropy_t2i": float(-(p_t2i * log_t2i).sum(1).mean()),
            "sym_kl": float(kl.mean()), "t2i_r1": evaluate(m, split)["t2i_r1"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = default_out()
    model = load_model("cots-lite")
    feats = tower_features(model, data, data / "tower_features.pt")
    live = LiveText(model, {name: feats[name]["captions"] for name in ("train", "val", "test", "photos23")})
    rows = {"zero-shot": dict(loss=OFF, epochs=0), "MCL alone": dict(loss=OFF), "MCL + KL": dict(loss=KL),
            "MCL + KL, w_kl 0.1": dict(loss={**KL, "w_kl": 0.1})}
    for name, recipe in rows.items():
        per_seed = []
        for seed in range(args.seeds if recipe.get("epochs", 1) else 1):
            m, seen, *_ = finetune(model, feats, live, seed, **recipe)
            per_seed.append(distributions(m, seen["val"]))
        mean = {k: round(statistics.mean(s[k] for s in per_seed), 4) for k in per_seed[0]}
        print(f"{name:22s} " + "  ".join(f"{k} {v}" for k, v in mean.items()), flush=True)


if __name__ == "__main__":
    main()
