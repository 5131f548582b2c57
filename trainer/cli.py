"""Command-line front end: ``cots train pretrain|finetune|tokenizer``, ``cots eval``, ``cots data synth``.

Registered into the one ``cots`` CLI through the ``cots.commands`` entry point; ``python -m trainer``
exposes the same commands (``pretrain``, ``finetune``, ``tokenizer``, ``eval``, ``data``) for torchrun:

    torchrun --nproc_per_node 2 -m trainer pretrain --data photos/ --preset tiny --out runs/x
"""
from __future__ import annotations

import argparse
import functools
import json
import sys

# flag -> dotted config key; None means "not given", so the config file value stands
OVERRIDES = {
    "preset": "preset", "steps": "steps", "batch_size": "batch_size", "lr": "optim.lr", "seed": "seed",
    "out": "out", "data": "data.train", "val_data": "data.val", "val_fraction": "data.val_fraction",
    "grad_accum": "grad_accum", "warmup": "optim.warmup_steps", "eval_every": "eval_every",
    "save_every": "save_every", "precision": "precision", "device": "device", "workers": "data.num_workers",
    "frames": "data.frames", "image_backbone": "image_backbone", "text_backbone": "text_backbone",
    "tokenizer": "tokenizer", "init_from": "init_from", "log_every": "log_every",
}


def _user_errors(handler):
    """Errors a person can act on become one line on stderr and exit status 2, never a traceback."""

    @functools.wraps(handler)
    def wrapped(args) -> int:
        from cots_core.errors import CotsError  # imported late: `cots --help` must not load torch

        try:
            return handler(args)
        except (CotsError, FileNotFoundError, ValueError) as error:
            print(f"cots: error: {error}", file=sys.stderr)
            return 2

    return wrapped


def resolve_model_arg(name: str | None) -> str | None:
    """A Hugging Face hub id (ORG/NAME) becomes its downloaded folder, fetched now, once, when missing;
    named models and folders pass through."""
    if not name:
        return name
    from tqdm.auto import tqdm

    from cots_core.hub import is_transfer_bar, resolve_model_source

    class TransferBar(tqdm):  # one bar: bytes of the total (huggingface_hub's others are hidden)
        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)
            super().__init__(*args, **{**kwargs, "disable": not is_transfer_bar(kwargs)})

    def announce(repo_id, folder) -> None:
        print(f"downloading {repo_id} from the Hugging Face hub into {folder} (once) ...", file=sys.stderr, flush=True)

    return resolve_model_source(name, tqdm_class=TransferBar, on_download=announce)


def _add_training_options(parser: argparse.ArgumentParser, mode: str) -> None:
    parser.set_defaults(mode=mode)
    parser.add_argument("--data", help="training data: a folder with sidecar captions, a .csv/.tsv/.jsonl "
                        "manifest, a COCO .json, or shards like 'shards/{000000..000009}.tar'")
    parser.add_argument("--val-data", help="explicit validation data (default: hold out --val-fraction of --data)")
    parser.add_argument("--val-fraction", type=float, help="fraction of items held out for validation (default 0.1)")
    parser.add_argument("--out", help="run folder for checkpoints, logs and the resolved config")
    parser.add_argument("--config", help="YAML or TOML file with training settings (flags override it)")
    parser.add_argument("--preset", help="model preset: tiny, vit-b16-bert-base (pretrain)")
    parser.add_argument("--steps", type=int, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, help="pairs per process per micro-batch")
    parser.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--warmup", type=int, help="warm-up steps")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--eval-every", type=int, help="validate every N steps (always at the end)")
    parser.add_argument("--save-every", type=int, help="checkpoint every N steps (always at the end)")
    parser.add_argument("--log-every", type=int)
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--device", help="auto, cpu or cuda")
    parser.add_argument("--workers", type=int, help="data loading processes")
    parser.add_argument("--frames", type=int, help="at most this many frames per video (one every 2 s, as search "
                        "samples it; spread evenly past that), default 8")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any config key, e.g. --set model.loss.use_kl=false --set data.augment=false")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    if mode != "tokenizer":
        parser.add_argument("--tokenizer", help="trained dVAE folder (cots train tokenizer) for CMVM targets")
        parser.add_argument("--no-cache-tokens", action="store_true",
                            help="compute visual tokens per batch instead of once (keeps augmentation)")
        parser.add_argument("--resume", help="continue a run exactly: its folder or one of its checkpoints")
    if mode == "pretrain":
        parser.add_argument("--image-backbone", help="timm model name (its pretrained weights) or a weights file")
        parser.add_argument("--text-backbone", help="transformers model folder or hub name")
    if mode == "finetune":
        parser.add_argument("--from", dest="init_from", help="COTS checkpoint folder, a named model (cots-lite) or a "
                            "Hugging Face CLIP/SigLIP hub id ORG/NAME (downloaded once)")
        parser.add_argument("--no-caption-memory", action="store_true",
                            help="do not remember the captioned items in the result (docs/USER_GUIDE.md, 'Fine-tuning')")


def config_from_args(args: argparse.Namespace):
    """The resolved TrainConfig: saved/--config file < flags < --set."""
    from cots_core.errors import CotsError
    from trainer.config import CONFIG_FILE, resolve_config
    from trainer.run_folders import resolve_checkpoint

    if getattr(args, "init_from", None):
        args.init_from = resolve_model_arg(args.init_from)
    overrides = {key: getattr(args, flag, None) for flag, key in OVERRIDES.items()}
    overrides["mode"] = args.mode
    if getattr(args, "no_cache_tokens", False):
        overrides["cache_tokens"] = False
    if args.no_progress:
        overrides["progress"] = False
    if getattr(args, "no_caption_memory", False):
        overrides["caption_memory"] = False
    file = args.config
    if getattr(args, "resume", None) and not file:
        file = resolve_checkpoint(args.resume) / CONFIG_FILE
    cfg = resolve_config(file, overrides, args.set)
    if not args.config and not getattr(args, "resume", None) and args.out is None:
        raise CotsError("give --out DIR (where checkpoints and logs go)")
    return cfg


@_user_errors
def _train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if cfg.mode == "tokenizer":
        from trainer.tokenizer import run_cli

        return run_cli(cfg)
    from trainer.loop import run_cli

    return run_cli(cfg, resume=args.resume)


@_user_errors
def _eval(args: argparse.Namespace) -> int:
    from trainer.evaluation_cli import run_eval

    metrics = run_eval(resolve_model_arg(args.model), args.data, split=args.split, holdout=args.val_fraction, seed=args.seed,
                       batch_size=args.batch_size, frames=args.frames, device=args.device)
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key:>12}  {value:.2f}" if isinstance(value, float) else f"{key:>12}  {value}")
    return 0


@_user_errors
def _synth(args: argparse.Namespace) -> int:
    from trainer.synth import generate_synthetic

    print(generate_synthetic(args.n, args.out, noise=args.noise, seed=args.seed, size=args.size,
                             max_groups=args.max_groups))
    return 0


def _add_eval(subparsers) -> None:
    p = subparsers.add_parser("eval", help="retrieval metrics (R@1/5/10, rsum) of a model on held-out data")
    p.add_argument("--model", required=True, help="a checkpoint or run folder, a named model (cots-lite) or a "
                   "Hugging Face hub id ORG/NAME (downloaded once)")
    p.add_argument("--data", help="evaluation data (default: the run's own validation split)")
    p.add_argument("--split", help="split label to use when the data has them (default: test, else val)")
    p.add_argument("--val-fraction", type=float, help="evaluate only this seeded held-out fraction of --data")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--frames", type=int, default=32,  # trainer.data.media.SEARCH_MAX_FRAMES (no torch import here)
                   help="at most this many frames per video, at the times search samples it (default: the index's 32)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_eval)


def _add_data(subparsers) -> None:
    p = subparsers.add_parser("data", help="dataset utilities")
    sub = p.add_subparsers(dest="data_command", metavar="COMMAND")
    s = sub.add_parser("synth", help="write a synthetic captioned collection of coloured shapes (sidecar format)")
    s.add_argument("--n", type=int, required=True, help="number of images")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--noise", type=float, default=0.0, help="fraction of captions swapped with other images'")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--size", type=int, default=96, help="image side in pixels")
    s.add_argument("--max-groups", type=int, choices=[1, 2], default=2,
                   help="1: single-group scenes only (easier captions, for quick experiments)")
    s.set_defaults(handler=_synth)
    p.set_defaults(handler=lambda args: (p.print_help(), 0)[1])


def add_train_modes(subparsers) -> None:
    for mode, text in (("pretrain", "pre-train COTS from scratch or from unimodal backbones"),
                       ("finetune", "fine-tune a COTS model on your own captioned photos and videos"),
                       ("tokenizer", "train the dVAE image tokenizer used for masked vision modelling")):
        p = subparsers.add_parser(mode, help=text)
        _add_training_options(p, mode)
        p.set_defaults(handler=_train)


def register_commands(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``train`` (pretrain, finetune, tokenizer), ``eval`` and ``data`` (synth) to the cots CLI."""
    train = subparsers.add_parser("train", help="train COTS or its image tokenizer")
    add_train_modes(train.add_subparsers(dest="train_command", metavar="MODE"))
    train.set_defaults(handler=lambda args: (train.print_help(), 0)[1])
    _add_eval(subparsers)
    _add_data(subparsers)


def build_parser() -> argparse.ArgumentParser:
    """``python -m trainer``: the train modes at top level, plus eval and data."""
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_train_modes(subparsers)
    _add_eval(subparsers)
    _add_data(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
