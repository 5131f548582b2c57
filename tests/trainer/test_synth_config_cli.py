"""The synthetic generator, config resolution, optimiser groups, and the commands end to end."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from trainer.cli import build_parser, register_commands
from trainer.config import resolve_config
from trainer.data import load_records
from trainer.optim import cosine_with_warmup, param_groups
from trainer.synth import COLOURS, COUNT_WORDS, RELATIONS, SHAPES, SIZES, generate_synthetic, load_mismatched


def test_synth_writes_sidecars_and_noise_record(tmp_path):
    summary = generate_synthetic(50, tmp_path, noise=0.3, seed=2, size=48)
    records, report = load_records(tmp_path)
    assert len(records) == 50 and not report.skipped
    assert Image.open(records[0].path).size == (48, 48)
    mismatched = load_mismatched(tmp_path)
    assert len(mismatched) == summary.n_mismatched == 15
    truth = json.loads((tmp_path / "noise.json").read_text())["true_captions"]
    for record in records:
        name = Path(record.path).name
        if record.path in mismatched:
            assert record.captions[0] != truth[name]
    again = tmp_path / "again"
    generate_synthetic(50, again, noise=0.3, seed=2, size=48)
    assert (again / "000007.txt").read_text() == (tmp_path / "000007.txt").read_text()


def test_every_synth_word_is_in_the_tiny_vocab():
    from cots_resources import resource_path

    vocab = set(resource_path("vocab", "tiny_vocab.txt").read_text().split())
    words = set(COUNT_WORDS.values()) | set(COLOURS) | set(SIZES) | set(SHAPES) | {s + "s" for s in SHAPES}
    words |= {w for relation in RELATIONS for w in relation.split()}
    assert words <= vocab, f"missing from the tiny vocab: {sorted(words - vocab)}"


def test_config_file_flags_and_set(tmp_path):
    (tmp_path / "c.yaml").write_text("steps: 50\nbatch_size: 8\noptim:\n  lr: 0.01\ndata:\n  train: x\n")
    cfg = resolve_config(tmp_path / "c.yaml", {"steps": 7, "optim.lr": None, "seed": 3},
                         ["model.loss.use_kl=false", "optim.betas=[0.9, 0.98]", "data.val_fraction=0.2"])
    assert (cfg.steps, cfg.batch_size, cfg.optim.lr, cfg.seed) == (7, 8, 0.01, 3)
    assert cfg.model == {"loss": {"use_kl": False}} and cfg.optim.betas == (0.9, 0.98)
    (tmp_path / "c.toml").write_text('preset = "tiny"\nsteps = 9\n[optim]\nlr = 1e-4\n')
    assert resolve_config(tmp_path / "c.toml").optim.lr == 1e-4
    cfg.save(tmp_path)
    assert resolve_config(tmp_path / "train_config.yaml") == cfg
    with pytest.raises(ValueError, match="unknown config key"):
        resolve_config(None, {"optim.lrr": 1})


def test_no_weight_decay_on_norms_and_biases_and_schedule():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    decay, no_decay = param_groups(model, 0.05)
    assert [p.shape for p in decay["params"]] == [(4, 4)] and len(no_decay["params"]) == 3
    assert no_decay["weight_decay"] == 0.0
    values = [cosine_with_warmup(s, 100, 10, 0.0) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0) and values[-1] < 0.01
    assert all(a >= b for a, b in zip(values[10:], values[11:]))


def test_commands_register_and_parse():
    parser = argparse.ArgumentParser(prog="cots")
    register_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "pretrain", "--data", "d", "--out", "o", "--steps", "5", "--lr", "1e-3",
                              "--preset", "tiny", "--batch-size", "2", "--seed", "4"])
    assert args.mode == "pretrain" and args.steps == 5
    args = parser.parse_args(["train", "finetune", "--from", "cots-lite", "--data", "d", "--out", "o"])
    assert args.init_from == "cots-lite"
    assert parser.parse_args(["eval", "--model", "m", "--json"]).json
    assert parser.parse_args(["data", "synth", "--n", "3", "--out", "x"]).n == 3
    assert build_parser().parse_args(["pretrain", "--data", "d"]).mode == "pretrain"  # python -m trainer


def test_tokenizer_then_pretrain_with_cached_tokens_then_eval_json(tmp_path, capsys):
    main = build_parser()
    data = tmp_path / "data"
    assert main.parse_args(["data", "synth", "--n", "24", "--out", str(data), "--size", "64"]).handler(
        main.parse_args(["data", "synth", "--n", "24", "--out", str(data), "--size", "64"])) == 0

    def run(argv):
        args = main.parse_args(argv)
        return args.handler(args)

    assert run(["tokenizer", "--data", str(data), "--out", str(tmp_path / "tok"), "--steps", "3",
                "--batch-size", "4", "--no-progress"]) == 0
    assert (tmp_path / "tok" / "dvae.safetensors").is_file()
    assert run(["pretrain", "--data", str(data), "--out", str(tmp_path / "run"), "--steps", "2",
                "--batch-size", "4", "--tokenizer", str(tmp_path / "tok"), "--val-fraction", "0.25",
                "--no-progress"]) == 0
    assert (tmp_path / "run" / "visual_tokens.safetensors").is_file()
    capsys.readouterr()
    assert run(["eval", "--model", str(tmp_path / "run"), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(metrics) >= {"i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "rsum",
                            "median_rank", "mean_rank"}
    assert metrics["n_items"] == 6  # the run's own held-out quarter
    # fine-tune from the checkpoint, with a loss part switched off
    assert run(["finetune", "--from", str(tmp_path / "run"), "--data", str(data), "--out", str(tmp_path / "ft"),
                "--steps", "1", "--batch-size", "4", "--set", "model.loss.use_kl=false", "--no-progress"]) == 0
    assert run(["eval", "--model", str(tmp_path / "nowhere"), "--data", str(data)]) == 2
