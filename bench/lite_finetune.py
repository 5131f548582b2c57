"""Fine-tuning on the 23-photo set: `cots train finetune --from cots-lite` with its default recipe (no
tuning flags) on captions written for these photos, held-out text->image R@1 before and after.

    .venv/bin/python bench/lite_finetune.py [--split captions|photos|both] [--steps N]

The recipe itself is chosen and measured on the captioned benchmark (bench/quality_finetune.py); this script
shows the other case, a person who captions their own photos and then searches them in other words.

Data (tests/data/real_photos/finetune/, captions written for this project, see ../SOURCES.md):
- "captions": train on all 23 photos with 3 training captions each (random resized crops, the model's
  train transform), evaluate on the 52 *different* queries of queries.json. The photos are shared
  between train and evaluation; only the wording is held out. The trainer refuses overlapping explicit
  validation data, so this split trains with --val-fraction 0 (the last epoch is kept) and evaluates with
  `cots eval`.
- "photos": train on 12 photos (36 captions), evaluate on the 11 other photos' 24 queries: nothing seen.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "real_photos" / "finetune"
SPLITS = {
    "captions": ("train_all_photos.jsonl", "heldout_queries.jsonl"),
    "photos": ("train_photo_split.jsonl", "heldout_photo_split.jsonl"),
}


def cots(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"cots {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def evaluate(model: str, heldout: Path) -> dict[str, float]:
    return json.loads(cots("eval", "--model", model, "--data", str(heldout), "--json").strip().splitlines()[-1])


def run(split: str, steps: int | None, out: Path) -> dict:
    train, heldout = (DATA / name for name in SPLITS[split])
    before = evaluate("cots-lite", heldout)
    args = ["train", "finetune", "--from", "cots-lite", "--data", str(train), "--out", str(out), "--no-progress"]
    if split == "captions":  # every photo is also a held-out photo: no held-out part of the training data
        args += ["--val-fraction", "0"]
    else:  # 36 pairs less the held-out 15 % are fewer than the default batch of 32, which the trainer refuses
        args += ["--batch-size", "15"]
    if steps:
        args += ["--steps", str(steps)]
    cots(*args)
    after = evaluate(str(out), heldout)
    return {"split": split, "steps": steps or "default (epochs)",
            "before": {k: before[k] for k in ("t2i_r1", "t2i_r5", "i2t_r1")},
            "after": {k: after[k] for k in ("t2i_r1", "t2i_r5", "i2t_r1")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["captions", "photos", "both"], default="both")
    parser.add_argument("--steps", type=int, help="optimizer steps (default: the trainer's, in epochs)")
    args = parser.parse_args()
    splits = ["captions", "photos"] if args.split == "both" else [args.split]
    with tempfile.TemporaryDirectory() as scratch:
        for split in splits:
            result = run(split, args.steps, Path(scratch) / split)
            print(json.dumps(result))


if __name__ == "__main__":
    main()
