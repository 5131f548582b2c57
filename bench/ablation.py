"""The paper's ablation (COTS, Table 3) on synthetic data with noisy captions.

Rows, same data, seed and steps: MCL only; + CMLM/CMVM (token level); + KL (task level); + AMF
(full COTS). Trains on a synthetic set with ``--noise`` mismatched captions and reports R@1/5/10 both
ways on a clean held-out synthetic set. CMVM needs a trained dVAE (``--tokenizer``, from
``cots train tokenizer``): without one the trainer switches CMVM off and the token-level row is CMLM only.

    python bench/ablation.py --steps 800 --n 4000 --batch-size 64 --out runs/ablation
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.config import DataConfig, OptimConfig, TrainConfig  # noqa: E402
from trainer.loop import main as train  # noqa: E402
from trainer.synth import generate_synthetic  # noqa: E402

ROWS = [
    ("MCL only", dict(use_mcl=True, use_mvlm=False, use_kl=False, use_amf=False)),
    ("+ CMLM/CMVM", dict(use_mcl=True, use_mvlm=True, use_kl=False, use_amf=False)),
    ("+ KL", dict(use_mcl=True, use_mvlm=True, use_kl=True, use_amf=False)),
    ("+ AMF (COTS)", dict(use_mcl=True, use_mvlm=True, use_kl=True, use_amf=True)),
]
KEYS = ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "rsum")


def table(results: list[dict]) -> str:
    lines = ["| objectives | I2T R@1 | R@5 | R@10 | T2I R@1 | R@5 | R@10 | rsum | min |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r["metrics"]
        lines.append(f"| {r['row']} | " + " | ".join(f"{m[k]:.1f}" for k in KEYS) + f" | {r['minutes']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--n", type=int, default=4000, help="training images")
    p.add_argument("--n-val", type=int, default=500)
    p.add_argument("--noise", type=float, default=0.2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--model-json", default='{"text": {"pooling": "mean"}}',
                   help="ModelConfig overrides for every row (the tiny preset's [CLS] starts nearly constant)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1))
    p.add_argument("--device", default="auto")
    p.add_argument("--tokenizer", help="trained dVAE folder for CMVM targets (without it CMVM is off)")
    p.add_argument("--out", default="runs/ablation")
    p.add_argument("--json", help="write results here after every row")
    p.add_argument("--rows", default="0,1,2,3", help="which rows to run (indices)")
    args = p.parse_args(argv)

    out = Path(args.out)
    train_dir, val_dir = out / "data" / "train", out / "data" / "val"
    if not (train_dir / "noise.json").is_file():
        generate_synthetic(args.n, train_dir, noise=args.noise, seed=args.seed, size=64)
    if not (val_dir / "noise.json").is_file():
        generate_synthetic(args.n_val, val_dir, noise=0.0, seed=args.seed + 1, size=64)
    base_model = json.loads(args.model_json)
    results = []
    for index in (int(i) for i in args.rows.split(",")):
        name, flags = ROWS[index]
        cfg = TrainConfig(
            preset=args.preset, out=str(out / f"row{index}"), steps=args.steps, batch_size=args.batch_size,
            seed=args.seed, device=args.device, tokenizer=args.tokenizer, log_every=50, save_every=0, eval_every=0, progress=False,
            model={**base_model, "loss": {**base_model.get("loss", {}), **flags}},
            data=DataConfig(train=str(train_dir), val=str(val_dir), augment=False, num_workers=args.workers,
                            max_val_items=args.n_val),
            optim=OptimConfig(lr=args.lr, warmup_steps=max(1, args.steps // 20)),
        )
        start = time.time()
        try:
            summary = train(cfg, log=lambda text: print(text, file=sys.stderr))
        except Exception:  # one broken row must not lose the others
            traceback.print_exc()
            continue
        results.append({"row": name, "flags": flags, "metrics": summary["eval"],
                        "minutes": (time.time() - start) / 60})
        print(table(results[-1:]).splitlines()[-1], flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    print(f"\nnoise {args.noise}, {args.n} train / {args.n_val} clean held-out images, {args.steps} steps x "
          f"batch {args.batch_size}, preset {args.preset}, seed {args.seed}\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
