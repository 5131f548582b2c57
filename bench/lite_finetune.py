"""Fine-tuning demonstration: `cots train finetune --from cots-lite` on real captioned photos, held-out
text->image R@1 before and after.

    .venv/bin/python bench/lite_finetune.py [--steps 40] [--split captions|photos|both]

Data (tests/data/real_photos/finetune/, captions written for this project, see ../SOURCES.md):
- "captions": train on all 23 photos with 3 training captions each (random resized crops, the model's
  train transform), evaluate on the 52 *different* queries of queries.json. The photos are shared
  between train and evaluation; only the wording is held out. The trainer refuses overlapping explicit
  validation data, so this split trains with --val-fraction 0 and evaluates with `cots eval`.
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


def run(split: str, steps: int, lr: float, batch_size: int, token_losses: bool, out: Path) -> dict:
    train, heldout = (DATA / name for name in SPLITS[split])
    before = evaluate("cots-lite", heldout)
    args = ["train", "finetune", "--from", "cots-lite", "--data", str(train), "--val-fraction", "0",
            "--out", str(out), "--steps", str(steps), "--batch-size", str(batch_size), "--lr", str(lr),
            "--warmup", str(max(1, steps // 10)), "--save-every", str(10 * steps), "--no-progress"]
    if token_losses:  # off by default for cots-lite: it has no trained MLM head or dVAE
        args += ["--set", "model.loss.use_mvlm=true"]
    cots(*args)
    after = evaluate(str(out), heldout)
    return {"split": split, "steps": steps, "lr": lr, "token_losses": token_losses,
            "before": {k: before[k] for k in ("t2i_r1", "t2i_r5", "i2t_r1")},
            "after": {k: after[k] for k in ("t2i_r1", "t2i_r5", "i2t_r1")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["captions", "photos", "both"], default="both")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--token-losses", action="store_true", help="keep CMLM/CMVM on (default: off)")
    args = parser.parse_args()
    splits = ["captions", "photos"] if args.split == "both" else [args.split]
    with tempfile.TemporaryDirectory() as scratch:
        for split in splits:
            result = run(split, args.steps, args.lr, args.batch_size, args.token_losses, Path(scratch) / split)
            print(json.dumps(result))


if __name__ == "__main__":
    main()
