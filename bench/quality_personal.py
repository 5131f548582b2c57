"""The personal case: a name the model cannot know, given in the caption of one photo of a subject; after
fine-tuning, does the name alone find the subject's other, uncaptioned photo?

    .venv/bin/python bench/quality_personal.py [--seeds 5]

Built from the benchmark (bench/quality_data.py) where the package has two real photos of the same subject:
the golden pig (pig_golden / pig_golden2), the fireman in his suit (fireman200b / fireman240a) and the frog
(frog / frog-1). The training photo's caption becomes only the name ("Wilbur."); its twin sits, uncaptioned,
in the gallery of the test photos (pig_golden2 is moved there from the training split). Reported: the
rank of the twin for the query that is only the name, zero-shot and after the fine-tune of
bench/quality_finetune.py (5 seeds), with the default recipe (tuned heads + caption memory), without the
memory, and with the residual path on.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.quality_data import default_out  # noqa: E402
from bench.quality_finetune import finetune, read_split, tower_features  # noqa: E402
from cots_core import load_model  # noqa: E402
from cots_core.heads import image_embedding  # noqa: E402

SUBJECTS = (("Wilbur", "animals/mammals/pig_golden.png", "animals/mammals/pig_golden2.png"),
            ("Sparky", "people/fireman200b.png", "military/fireman240a.png"),
            ("Freddy", "animals/amphibians/frog.png", "animals/amphibians/frog-1.png"))


def stem(relative: str) -> str:
    import hashlib

    return "img_" + hashlib.sha1(relative.encode()).hexdigest()[:10]


@torch.no_grad()
def ranks(model, gallery: torch.Tensor, targets: list[int], names: list[str]) -> list[int]:
    model.eval()
    image = image_embedding(model.image_projection, model.caption_memory, gallery)
    tokens = model.tokenize(names)
    query = F.normalize(model.text_projection(model.text_encoder(tokens["input_ids"], tokens["attention_mask"])
                                              .global_feature).float(), dim=-1)
    sim = query @ image.t()
    return [int((sim[i] > sim[i, t]).sum()) + 1 for i, t in enumerate(targets)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cache", type=Path, help="tower features (default: DATA/tower_features.pt)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = default_out()
    model = load_model("cots-lite")
    text_tower = model.text_encoder
    feats = tower_features(model, data, args.cache or data / "tower_features.pt")
    train_stems = [p.stem for p in read_split(data / "train")[0]]
    test_stems = [p.stem for p in read_split(data / "test")[0]]
    train = {k: (v.clone() if torch.is_tensor(v) else list(v)) for k, v in feats["train"].items()}
    gallery, targets = feats["test"]["eval"].clone(), []
    moved = []
    for name, captioned, twin in SUBJECTS:
        i = train_stems.index(stem(captioned))
        train["captions"][i] = f"{name}."
        tokens = model.tokenize([f"{name}."])
        with torch.no_grad():
            train["text"][i] = text_tower(tokens["input_ids"], tokens["attention_mask"]).global_feature[0]
        if stem(twin) in test_stems:
            targets.append(test_stems.index(stem(twin)))
        else:  # the twin was a training photo: take it out of training, into the gallery
            j = train_stems.index(stem(twin))
            moved.append(j)
            targets.append(gallery.shape[0])
            gallery = torch.cat([gallery, train["eval"][j:j + 1]])
    keep = [i for i in range(len(train_stems)) if i not in moved]
    train = {k: (v[keep] if torch.is_tensor(v) else [v[i] for i in keep]) for k, v in train.items()}
    names = [name for name, _, _ in SUBJECTS]
    print(json.dumps({"recipe": "zero-shot", "ranks": dict(zip(names, ranks(model, gallery, targets, names))),
                      "gallery": int(gallery.shape[0])}))
    for label, recipe in (("default recipe (with the caption memory)", {}),
                          ("no caption memory (the recipe before it)", {"memory": False}),
                          ("+ residual path, scale 0.03", {"residual": True, "residual_scale": 0.03})):
        per_seed = []
        for seed in range(args.seeds):
            tuned, _ = finetune(model, {**feats, "train": train}, seed, **recipe)
            tuned.text_encoder = text_tower  # the stand-in only knows the training captions
            per_seed.append(ranks(tuned, gallery, targets, names))
        medians = {n: statistics.median(r[i] for r in per_seed) for i, n in enumerate(names)}
        print(json.dumps({"recipe": label, "median_ranks": medians, "per_seed": per_seed}))


if __name__ == "__main__":
    main()
