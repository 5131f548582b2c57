"""Which test queries a fine-tune moves into (or out of) first place, by source and by whether their caption
also captions a training photo (a repeated subject: "A fish.", "A hammer.").

    .venv/bin/python bench/quality_gains.py [--seeds 3]

Uses the tower features and the default recipe of bench/quality_finetune.py on the benchmark of
bench/quality_data.py (test split; identical captions answer for each other, as in trainer.metrics).
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.quality_data import default_out  # noqa: E402
from bench.quality_finetune import finetune, tower_features  # noqa: E402
from cots_core import load_model  # noqa: E402
from trainer.metrics import relevance_matrix, text_to_item_ranks  # noqa: E402


def test_ranks(model, test: dict):
    with torch.no_grad():
        image = F.normalize(model.image_projection(test["eval"]).float(), dim=-1)
        text = F.normalize(model.text_projection(test["text"]).float(), dim=-1)
    sim, owner = image @ text.t(), list(range(len(test["captions"])))
    return text_to_item_ranks(sim, owner, relevance_matrix(owner, sim.shape[0], test["captions"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = default_out()
    model = load_model("cots-lite")
    feats = tower_features(model, data, data / "tower_features.pt")
    test, seen = feats["test"], collections.Counter(feats["train"]["captions"])
    kinds = [(source, "repeated" if seen[c] else "unique") for source, c in zip(test["source"], test["captions"])]
    before = test_ranks(model.eval(), test)
    gained, lost = collections.Counter(), collections.Counter()
    for seed in range(args.seeds):
        after = test_ranks(finetune(model, feats, seed)[0], test)
        for j, kind in enumerate(kinds):
            gained[kind] += int(before[j] > 0 and after[j] == 0)
            lost[kind] += int(before[j] == 0 and after[j] > 0)
    print(json.dumps({"/".join(k): {"queries": n, "into_first_place": gained[k], "out_of_first_place": lost[k]}
                      for k, n in sorted(collections.Counter(kinds).items())}))


if __name__ == "__main__":
    main()
