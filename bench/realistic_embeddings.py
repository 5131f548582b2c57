"""Realistic cots-lite embeddings for search benchmarks (not isotropic noise, not Gaussian clusters).

Image side: EfficientNet-Lite0's pooled features (1280-d) of real photos (tests/data/real_photos,
resources/sample_library, scikit-image's sample images) under the model's training augmentation
(random resized crops); their mean and covariance (slightly shrunk) define a Gaussian. Plain draws from
it give vague posteriors (every class a little: generated items then have mean pairwise cosine 0.86 against
0.38 for the real photos), because real features are peaked where a Gaussian spreads. So each item also
gets a push of random strength (uniform in TOPIC_STRENGTH) along one ImageNet class's classifier direction
(a topic drawn uniformly from the 1000): the real photos' median top-1 posterior is 0.08 and mean cosine
0.38; the generated items' 0.12-0.16 and 0.34-0.40. Draws are clipped at 0 like the real post-activation
features and go through the real ConSE bridge (classifier -> softmax -> class-text embeddings). Text side: real captions (the queries and
fine-tuning captions of tests/data/real_photos, the sample library's sidecars) and the shipped vocabulary,
embedded by the real text tower.

    from bench.realistic_embeddings import EmbeddingSource
    source = EmbeddingSource.build(augmentations=20)   # ~1-2 min on 2 cores (loads cots-lite)
    items = source.items(100_000, seed=0)              # [n, 384] float32, L2-normalised
    photos = source.photo_queries(100, seed=1)         # embeddings of fresh augmented real photos
    texts = source.texts(source.captions())            # caption embeddings
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TOPIC_STRENGTH = (3.5, 6.5)  # calibrated against the real photos' statistics (see the module docstring)


def real_photo_paths() -> list[Path]:
    paths = sorted((ROOT / "tests" / "data" / "real_photos").glob("*.jpg"))
    paths += sorted(p for p in (ROOT / "resources" / "sample_library").rglob("*.jpg"))
    try:
        import skimage

        paths += sorted(p for p in (Path(skimage.__file__).parent / "data").iterdir()
                        if p.suffix in (".png", ".jpg"))
    except ImportError:
        pass
    return paths


def real_captions() -> list[str]:
    """Every human-written caption shipped with the repository (queries, fine-tuning captions, sidecars)."""
    photos = ROOT / "tests" / "data" / "real_photos"
    captions = [q for entry in json.loads((photos / "queries.json").read_text())["photos"] for q in entry["queries"]]
    for manifest in sorted((photos / "finetune").glob("*.jsonl")):
        for line in manifest.read_text().splitlines():
            record = json.loads(line)
            captions.append(record.get("caption") or record.get("query") or record.get("text") or "")
    captions += [p.read_text().strip() for p in (ROOT / "resources" / "sample_library").rglob("*.txt")]
    return sorted({c.strip() for c in captions if c and c.strip()})


def vocabulary() -> list[str]:
    lines = []
    for path in sorted((ROOT / "resources" / "vocabulary").glob("*.txt")):
        lines += [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return sorted(set(lines))


def _normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@dataclass
class EmbeddingSource:
    model: torch.nn.Module  # cots-lite (COTS)
    images: list[Image.Image]
    features: torch.Tensor  # [M, 1280] pooled features of augmented real photos
    mean: torch.Tensor
    cholesky: torch.Tensor

    @classmethod
    def build(cls, augmentations: int = 20, seed: int = 0, shrink: float = 0.05) -> EmbeddingSource:
        from cots_core import load_model

        torch.manual_seed(seed)
        model = load_model("cots-lite").eval()
        images = [Image.open(p).convert("RGB") for p in real_photo_paths()]
        features = cls._pooled(model, [model.train_transform(im) for im in images for _ in range(augmentations)])
        mean = features.mean(0)
        centred = features - mean
        cov = centred.T @ centred / (len(features) - 1)
        # shrink towards the diagonal: a few hundred photos cannot fill 1280 dimensions
        cov = (1 - shrink) * cov + shrink * torch.diag(torch.diagonal(cov)) + 1e-6 * torch.eye(len(mean))
        return cls(model, images, features, mean, torch.linalg.cholesky(cov.double()).float())

    @staticmethod
    def _pooled(model, pixels: list[torch.Tensor], batch: int = 64) -> torch.Tensor:
        out = []
        with torch.inference_mode():
            for start in range(0, len(pixels), batch):
                out.append(model.image_encoder(torch.stack(pixels[start:start + batch])).global_feature.float())
        return torch.cat(out)

    def _bridge(self, features: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return _normalise(self.model.image_projection(features).float().numpy())

    def items(self, n: int, seed: int = 0, batch: int = 20_000) -> np.ndarray:
        """n library items: features drawn from the real features' Gaussian plus a topic push, through the
        real bridge (module docstring)."""
        generator = torch.Generator().manual_seed(seed)
        directions = self.model.image_projection.classifier.weight.detach().float()
        directions = directions / directions.norm(dim=1, keepdim=True)
        low, high = TOPIC_STRENGTH
        out = np.empty((n, self.model.config.embed_dim), np.float32)
        for start in range(0, n, batch):
            count = min(batch, n - start)
            noise = torch.randn(count, len(self.mean), generator=generator) @ self.cholesky.T
            topics = directions[torch.randint(0, len(directions), (count,), generator=generator)]
            strength = low + (high - low) * torch.rand(count, 1, generator=generator)
            out[start:start + count] = self._bridge((self.mean + noise + strength * topics).clamp(min=0))
        return out

    def real_items(self) -> np.ndarray:
        """Embeddings of the augmented real photos the statistics came from (for comparison)."""
        return self._bridge(self.features)

    def photo_queries(self, n: int, seed: int = 1) -> np.ndarray:
        """Embeddings of n fresh augmentations of the real photos (a `cots similar` with an outside photo)."""
        torch.manual_seed(seed)
        picks = np.random.default_rng(seed).integers(0, len(self.images), n)
        return self._bridge(self._pooled(self.model, [self.model.train_transform(self.images[i]) for i in picks]))

    def texts(self, texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return _normalise(torch.cat([self.model.encode_texts(texts[s:s + 256]) for s in range(0, len(texts), 256)])
                              .float().numpy())

    def captions(self) -> list[str]:
        return real_captions()

    def vocabulary(self) -> list[str]:
        return vocabulary()


def describe(x: np.ndarray, sample: int = 2000, seed: int = 0) -> dict:
    """A few statistics to compare generated with real embeddings: mean cosine between random pairs, and
    the share of variance in the top 10 principal directions."""
    rng = np.random.default_rng(seed)
    x = x[rng.choice(len(x), min(sample, len(x)), replace=False)]
    pairs = x @ x.T
    off = pairs[~np.eye(len(x), dtype=bool)]
    spectrum = np.linalg.svd(x - x.mean(0), compute_uv=False) ** 2
    return {"mean_cos": round(float(off.mean()), 3), "p99_cos": round(float(np.percentile(off, 99)), 3),
            "top10_variance": round(float(spectrum[:10].sum() / spectrum.sum()), 3)}
