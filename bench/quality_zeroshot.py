"""cots-lite's zero-shot bridge re-chosen on the benchmark's validation split, reported on its test split and
on the 23-photo set (tests/data/real_photos).

    .venv/bin/python bench/quality_zeroshot.py [--data DIR]

Uses the tower features cached by bench/quality_finetune.py (pooled EfficientNet features of the eval view,
MiniLM features of every caption) and the class-text matrices of bench/lite_quality.py, so every variant is a
few matrix products. Variants: class texts x temperature x how much of the posterior (top k) x centring.
Selection: text->image R@1 on val, ties broken by (t2i R@5 + i2t R@1).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lite_quality import MiniLM, bridge, class_texts  # noqa: E402
from bench.quality_data import default_out  # noqa: E402
from bench.quality_finetune import tower_features  # noqa: E402
from cots_core import lite, load_model  # noqa: E402
from trainer.metrics import retrieval_metrics  # noqa: E402

SPLITS = ("val", "test", "photos23")


def score(image: torch.Tensor, split: dict) -> dict[str, float]:
    query = F.normalize(split["text"].float(), dim=-1)  # cots-lite's text projection starts as identity
    owner = split.get("owner", list(range(len(split["captions"]))))
    m = retrieval_metrics(image @ query.t(), owner, None if "owner" in split else split["captions"])
    return {k: round(m[k], 1) for k in ("t2i_r1", "t2i_r5", "i2t_r1")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--cache", type=Path, help="tower features (default: DATA/tower_features.pt)")
    parser.add_argument("--class-cache", type=Path, default=Path("/tmp/cots_lite_class_texts.pt"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = load_model(lite.NAME)
    data = args.data or default_out()
    feats = tower_features(model, data, args.cache or data / "tower_features.pt")
    with torch.no_grad():
        logits = {s: model.image_projection.classifier(feats[s]["eval"]) for s in SPLITS}
        built = {s: score(F.normalize(model.image_projection(feats[s]["eval"]), dim=-1), feats[s]) for s in SPLITS}
    print(json.dumps({"variant": "cots-lite as built (T=1.5, all, centring 0.75, names + gloss)", **built}))
    classes = class_texts(MiniLM(), args.class_cache, ensemble=False)
    rows = []
    for texts, matrix in classes.items():
        for center in (0.0, 0.5, 0.75, 1.0):
            for temperature in (1.0, 1.5, 2.0, 3.0):
                for top_k in (5, 10, None):
                    name = f"{texts}, T={temperature:g}, top {top_k or 'all'}, centring {center:g}"
                    result = {s: score(bridge(logits[s], matrix, temperature, top_k, center), feats[s]) for s in SPLITS}
                    rows.append((name, result))
    rows.sort(key=lambda row: (row[1]["val"]["t2i_r1"], row[1]["val"]["t2i_r5"] + row[1]["val"]["i2t_r1"]),
              reverse=True)
    for name, result in rows[:15]:
        print(json.dumps({"variant": name, **result}))


if __name__ == "__main__":
    main()
