"""cots-lite zero-shot quality on the real-photo evaluation set, and the comparison of bridge variants.

    .venv/bin/python bench/lite_quality.py            # variants + the model as built/cached
    .venv/bin/python bench/lite_quality.py --built    # only the model as load_model("cots-lite") gives it

Variants are computed from cached tower outputs (pooled image feature -> ImageNet logits; MiniLM query
and class-text embeddings), so each is a few matrix products. Selection criterion: the mean of
text->image R@1 and image->text R@1. With 23 photos and 52 queries one query is ~2 points of t2i R@1:
read differences below ~4 points as noise.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spin-waiting on a shared CPU: see app/cli.py
import torch  # noqa: E402
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cots_core import lite  # noqa: E402
from cots_core.config import VisionConfig  # noqa: E402
from cots_core.transforms import build_transform  # noqa: E402
from trainer.metrics import retrieval_metrics  # noqa: E402

EVAL_DIR = ROOT / "tests" / "data" / "real_photos"


def load_eval_set(directory: Path = EVAL_DIR) -> tuple[list[Path], list[str], list[int]]:
    """Photos, queries, and the photo index of each query."""
    spec = json.loads((directory / "queries.json").read_text())
    photos, queries, owner = [], [], []
    for index, entry in enumerate(spec["photos"]):
        photos.append(directory / entry["file"])
        for query in entry["queries"]:
            queries.append(query)
            owner.append(index)
    return photos, queries, owner


class MiniLM:
    """The packaged MiniLM with mean pooling, L2-normalised (as sentence-transformers does)."""

    def __init__(self):
        from transformers import AutoModel, AutoTokenizer

        path = lite.minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModel.from_pretrained(str(path)).eval()

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state
        weights = batch["attention_mask"].unsqueeze(-1).float()
        return F.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)


# A subset of CLIP's ImageNet prompt ensemble
ENSEMBLE_TEMPLATES = ("a photo of a {}.", "a close-up photo of a {}.", "a photo of the {}.", "a bright photo of a {}.",
                      "a photo of many {}.", "a cropped photo of a {}.", "a good photo of a {}.", "art of the {}.")


def class_texts(text: MiniLM, cache: Path, ensemble: bool) -> dict[str, torch.Tensor]:
    """Class-text matrices [1000, 384], uncentred, one per recipe (cached on disk)."""
    out = torch.load(cache, weights_only=True) if cache.is_file() else {}
    synonyms = lite.imagenet_class_synonyms()
    first = [names[:1] for names in synonyms]
    recipes = {
        "name (first lemma)": lambda: lite.prompt_embeddings(text, ("{}",), first),
        "names (all lemmas)": lambda: lite.prompt_embeddings(text, ("{}",), synonyms),
        "'a photo of a {}.' (all lemmas)": lambda: lite.prompt_embeddings(text, ("a photo of a {}.",), synonyms),
        "photo + gloss": lambda: lite._encode_batched(text, lite.imagenet_class_glosses()),
    }
    if ensemble:
        recipes["8-prompt ensemble (all lemmas)"] = lambda: lite.prompt_embeddings(text, ENSEMBLE_TEMPLATES, synonyms)
    for key, make in recipes.items():
        if key not in out:
            start = time.perf_counter()
            out[key] = make()
            print(f"  class texts {key}: {time.perf_counter() - start:.0f}s", file=sys.stderr)
    out["names + photo gloss (chosen)"] = F.normalize(out["names (all lemmas)"] + out["photo + gloss"], dim=-1)
    torch.save(out, cache)
    return out


def image_logits(photos: list[Path]) -> torch.Tensor:
    model = lite.load_efficientnet_lite0()
    transform = build_transform(224, VisionConfig(mean=(0.5,) * 3, std=(0.5,) * 3))
    pixels = torch.stack([transform(Image.open(p)) for p in photos])
    with torch.inference_mode():
        return model(pixels)


def bridge(logits: torch.Tensor, classes: torch.Tensor, temperature: float, top_k: int | None,
           center: float) -> torch.Tensor:
    """ConSE: softmax(logits / T) (optionally only the top k, renormalised) times the class texts."""
    posterior = (logits / temperature).softmax(-1)
    if top_k:
        values, indices = posterior.topk(top_k, dim=-1)
        posterior = torch.zeros_like(posterior).scatter_(-1, indices, values / values.sum(-1, keepdim=True))
    # centering is representable in the model: subtract center * mean from every class-embedding row
    embeddings = classes - center * classes.mean(0, keepdim=True)
    return F.normalize(posterior @ embeddings, dim=-1)


def score(image: torch.Tensor, query: torch.Tensor, owner: list[int]) -> dict[str, float]:
    m = retrieval_metrics(image @ query.t(), owner)
    return {"t2i_r1": m["t2i_r1"], "t2i_r5": m["t2i_r5"], "i2t_r1": m["i2t_r1"],
            "select": (m["t2i_r1"] + m["i2t_r1"]) / 2}


def variants(cache: Path, ensemble: bool) -> list[tuple[str, dict[str, float]]]:
    photos, queries, owner = load_eval_set()
    text = MiniLM()
    query = text(queries)
    classes = class_texts(text, cache, ensemble)
    logits = image_logits(photos)
    rows = []
    # 1. the ConSE floor (Norouzi et al.: top 10 of the posterior, T = 1) with each class-text recipe
    for key, matrix in classes.items():
        rows.append((f"ConSE top10 T=1, class texts: {key}", score(bridge(logits, matrix, 1.0, 10, 0.0), query, owner)))
    # 2. with the chosen texts: temperature x how much of the posterior x centering
    chosen = classes["names + photo gloss (chosen)"]
    for center in (0.0, 0.5, 0.75, 1.0):
        for temperature in (1.0, 1.5, 2.0, 3.0):
            for top_k in (1, 5, 10, None):
                rows.append((f"chosen texts, T={temperature:g}, top{top_k or ' all'}, centering {center:g}",
                             score(bridge(logits, chosen, temperature, top_k, center), query, owner)))
    return rows


def built_model_metrics() -> dict[str, float]:
    from cots_core import load_model

    photos, queries, owner = load_eval_set()
    model = load_model(lite.NAME)
    images = model.encode_pil([Image.open(p) for p in photos])
    return score(images, model.encode_texts(queries), owner)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--built", action="store_true", help="only measure the model as load_model gives it")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cots_lite_class_texts.pt"))
    parser.add_argument("--ensemble", action="store_true", help="also the 8-prompt ensemble (~4 min on 2 cores)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if not args.built:
        rows = variants(args.cache, args.ensemble)
        print("| variant | t2i R@1 | t2i R@5 | i2t R@1 | (t2i R@1 + i2t R@1)/2 |")
        print("| --- | --- | --- | --- | --- |")
        for name, m in rows:
            print(f"| {name} | {m['t2i_r1']:.1f} | {m['t2i_r5']:.1f} | {m['i2t_r1']:.1f} | {m['select']:.1f} |")
    m = built_model_metrics()
    print(f"\ncots-lite as built: t2i R@1 {m['t2i_r1']:.1f}  t2i R@5 {m['t2i_r5']:.1f}  i2t R@1 {m['i2t_r1']:.1f}")


if __name__ == "__main__":
    main()
