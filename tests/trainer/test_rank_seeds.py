"""Random streams per DDP rank: one seed builds the model, then every rank draws its own masks and dropout."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.checkpoint import capture_rng, restore_rng
from trainer.distributed import rank_seed

REPO = Path(__file__).resolve().parents[2]
# every pair has this caption: the ranks' word masks can then differ only through their random streams
CAPTION = "a small red square drawn on a white ground beside a large blue circle and a green line"

# Run under torchrun: records what each rank drew (word and patch masks) and its model right after building,
# then trains as `python -m trainer` would.
RECORDER = '''
import hashlib, json, os, sys
from pathlib import Path

import cots_core.model as model_module
import trainer.loop as loop
from trainer.cli import main

record = {"word_masks": [], "patch_masks": [], "input_ids": []}
mask_words, block_mask_batch, build_model = model_module.mask_words, model_module.block_mask_batch, loop.build_model


def recording_mask_words(input_ids, *args, **kwargs):
    masked, labels = mask_words(input_ids, *args, **kwargs)
    record["word_masks"].append((labels != -100).tolist())
    record["input_ids"].append(input_ids.tolist())
    return masked, labels


def recording_block_mask_batch(*args, **kwargs):
    mask = block_mask_batch(*args, **kwargs)
    record["patch_masks"].append(mask.tolist())
    return mask


def recording_build_model(*args, **kwargs):
    model = build_model(*args, **kwargs)
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().float().contiguous().numpy().tobytes())
    record["initial_weights"] = digest.hexdigest()
    return model


model_module.mask_words = recording_mask_words
model_module.block_mask_batch = recording_block_mask_batch
loop.build_model = recording_build_model
code = main(sys.argv[2:])
Path(sys.argv[1], f"rank{os.environ['RANK']}.json").write_text(json.dumps(record))
sys.exit(code)
'''


def test_rank_seeds_differ_per_rank_and_from_the_model_seed():
    seeds = {rank_seed(7, rank) for rank in range(4)} | {rank_seed(8, 0), 7}
    assert len(seeds) == 6 and all(0 <= s < 2**63 for s in seeds)
    assert rank_seed(7, 1) == rank_seed(7, 1)


def test_restore_rng_takes_the_ranks_own_state():
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        np.random.seed(seed)
        states.append(capture_rng())
    restore_rng(states, rank=1)
    torch.manual_seed(2)
    expected = torch.rand(3)
    restore_rng(states, rank=1)
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(5)
    restore_rng(states, rank=2)  # more ranks than the checkpoint saved: the rank keeps its own streams
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    restore_rng(states, rank=2)
    assert torch.equal(torch.rand(3), before)
    restore_rng(states[0], rank=0)  # a checkpoint from before per-rank states: one dict, rank 0's
    torch.manual_seed(1)
    expected = torch.rand(3)
    restore_rng(states[0], rank=0)
    assert torch.equal(torch.rand(3), expected)


def _dvae_folder(directory: Path) -> Path:
    """An (untrained) dVAE the trainer accepts as trained: CMVM then draws patch masks."""
    from cots_core import COTS, ModelConfig
    from cots_core.dvae import DiscreteVAE

    model = COTS(ModelConfig.preset("tiny"), pretrained_backbones=False)
    config = dataclasses.replace(model.config.tokenizer, trained=True)
    DiscreteVAE(config, model.config.image_size, model.grid).save_pretrained(directory)
    return directory


@pytest.mark.slow  # two gloo processes (~30 s)
def test_ddp_ranks_draw_their_own_masks_from_identical_initial_weights(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        path = tmp_path / "photos" / f"{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        rows.append(json.dumps({"path": str(path), "caption": CAPTION}))
    manifest = tmp_path / "pairs.jsonl"
    manifest.write_text("\n".join(rows) + "\n")
    (tmp_path / "recorder.py").write_text(RECORDER)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(29600 + os.getpid() % 1000), str(tmp_path / "recorder.py"), str(tmp_path),
               "pretrain", "--data", str(manifest), "--preset", "tiny", "--steps", "2", "--batch-size", "2",
               "--seed", "3", "--device", "cpu", "--no-progress", "--val-fraction", "0",
               "--tokenizer", str(_dvae_folder(tmp_path / "dvae")), "--out", str(tmp_path / "run")]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["initial_weights"] == ranks[1]["initial_weights"]  # one seed built both models
    assert ranks[0]["input_ids"] == ranks[1]["input_ids"]  # the same words to mask on both ranks...
    assert ranks[0]["word_masks"] != ranks[1]["word_masks"]  # ...masked at other places
    assert len(ranks[0]["patch_masks"]) == 2 and ranks[0]["patch_masks"] != ranks[1]["patch_masks"]
    # the checkpoint keeps each rank's streams, so a resume continues both
    state = torch.load(tmp_path / "run" / "step-000002" / "training_state.pt", weights_only=True)
    assert len(state["rng"]) == 2 and not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
