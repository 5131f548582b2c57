"""Training as COTS describes it: CMVM only against a trained tokenizer, one momentum update per
optimiser step, and video pairs trained as the mean of their frames (the representation search uses)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cots_core import COTS, CotsError, ModelConfig
from trainer.config import DataConfig, OptimConfig, TrainConfig
from trainer.synth import generate_synthetic

MOMENTUM_MODULES = ("image_encoder", "image_projection", "text_encoder", "text_projection")


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fidelity_synth")
    generate_synthetic(24, out, seed=3, size=64)
    return out


def _cfg(out: Path, data: Path, **overrides) -> TrainConfig:
    base = dict(preset="tiny", out=str(out), steps=2, batch_size=4, seed=0, log_every=1, save_every=0,
                eval_every=0, progress=False, data=DataConfig(train=str(data), val_fraction=0.0, augment=False),
                optim=OptimConfig(lr=1e-3, warmup_steps=0))
    base.update(overrides)
    return TrainConfig(**base)


def test_pretrain_without_tokenizer_trains_no_cmvm_and_its_checkpoint_says_so(tmp_path, synth):
    from trainer.loop import main

    lines: list[str] = []
    summary = main(_cfg(tmp_path / "run", synth), log=lines.append)
    notices = [line for line in lines if "CMVM" in line]
    assert len(notices) == 1 and "off" in notices[0] and "--tokenizer" in notices[0]
    saved = json.loads((Path(summary["checkpoint"]) / "config.json").read_text())["loss"]
    assert saved["use_cmvm"] is False and saved["use_mvlm"] is True  # CMLM was trained, CMVM was not
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [entry for entry in logged if entry["kind"] == "train"]
    assert train and all(entry["loss_cmvm"] == 0.0 and entry["loss_cmlm"] > 0 for entry in train)

    # a fine-tune from that checkpoint inherits it (its dVAE was never trained) and says nothing more
    again: list[str] = []
    main(_cfg(tmp_path / "ft", synth, mode="finetune", init_from=str(tmp_path / "run"), steps=1), log=again.append)
    tuned = json.loads((tmp_path / "ft" / "step-000001" / "config.json").read_text())["loss"]
    assert tuned["use_cmvm"] is False

    with pytest.raises(CotsError, match="--tokenizer"):  # asked for explicitly: refused, not ignored
        main(_cfg(tmp_path / "asked", synth, model={"loss": {"use_cmvm": True}}), log=lambda _: None)
    # the case: every full checkpoint holds dVAE weights, but this one's were never trained
    with pytest.raises(CotsError, match="never trained") as refused:
        main(_cfg(tmp_path / "ft-asked", synth, mode="finetune", init_from=str(tmp_path / "run"), steps=1,
                  model={"loss": {"use_cmvm": True}}), log=lambda _: None)
    assert "\n" not in str(refused.value) and not (tmp_path / "ft-asked" / "step-000001").exists()


def _trained_tokenizer(out: Path, data: Path) -> Path:
    from trainer.tokenizer import train_tokenizer

    train_tokenizer(_cfg(out, data, mode="tokenizer", steps=2), log=lambda _: None)
    return out


def _saved(run: Path) -> dict:
    return json.loads(next(run.glob("step-*/config.json")).read_text())


def _cmvm_losses(run: Path) -> list[float]:
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [entry["loss_cmvm"] for entry in logged if entry["kind"] == "train"]


def test_a_trained_tokenizer_is_recorded_and_a_finetune_inherits_cmvm(tmp_path, synth):
    from trainer.loop import main

    tokenizer = _trained_tokenizer(tmp_path / "dvae", synth)
    main(_cfg(tmp_path / "run", synth, tokenizer=str(tokenizer)), log=lambda _: None)
    saved = _saved(tmp_path / "run")
    assert saved["tokenizer"]["trained"] is True and saved["loss"]["use_cmvm"] is True
    assert all(value > 0 for value in _cmvm_losses(tmp_path / "run"))

    lines: list[str] = []
    main(_cfg(tmp_path / "ft", synth, mode="finetune", init_from=str(tmp_path / "run"), steps=1,
              model={"loss": {"use_cmvm": True}}), log=lines.append)
    tuned = _saved(tmp_path / "ft")
    assert tuned["tokenizer"]["trained"] is True and tuned["loss"]["use_cmvm"] is True
    assert all(value > 0 for value in _cmvm_losses(tmp_path / "ft")) and not [x for x in lines if "CMVM" in x]


def test_a_checkpoint_older_than_the_field_counts_as_untrained(tmp_path, synth):
    from trainer.loop import main

    tokenizer = _trained_tokenizer(tmp_path / "dvae", synth)
    summary = main(_cfg(tmp_path / "run", synth, tokenizer=str(tokenizer)), log=lambda _: None)
    config_file = Path(summary["checkpoint"]) / "config.json"
    data = json.loads(config_file.read_text())
    del data["tokenizer"]["trained"]  # as saved before the field existed, with use_cmvm true
    config_file.write_text(json.dumps(data))
    lines: list[str] = []
    main(_cfg(tmp_path / "ft", synth, mode="finetune", init_from=summary["checkpoint"], steps=1), log=lines.append)
    assert _saved(tmp_path / "ft")["loss"]["use_cmvm"] is False
    assert len([x for x in lines if "CMVM" in x and "never trained" in x]) == 1
    assert all(value == 0.0 for value in _cmvm_losses(tmp_path / "ft"))


def test_a_tokenizer_folder_that_says_untrained_is_refused(tmp_path, synth):
    from cots_core.dvae import DiscreteVAE
    from trainer.loop import main

    config = ModelConfig.preset("tiny")
    DiscreteVAE(config.tokenizer, config.image_size, (8, 8)).save_pretrained(tmp_path / "random")
    with pytest.raises(CotsError, match="never trained"):
        main(_cfg(tmp_path / "run", synth, tokenizer=str(tmp_path / "random")), log=lambda _: None)


def test_one_momentum_update_per_optimizer_step_with_grad_accumulation(tmp_path, synth):
    from trainer.loop import main

    m = 0.5  # a low momentum makes m against m**2 (an update per micro-batch) easy to tell apart
    common = dict(model={"queue": {"momentum": m}}, optim=OptimConfig(lr=1e-2, warmup_steps=0))
    main(_cfg(tmp_path / "run", synth, steps=1, save_every=1, **common), log=lambda _: None)
    main(_cfg(tmp_path / "run", synth, steps=2, grad_accum=2, save_every=1, **common),
         resume=str(tmp_path / "run"), log=lambda _: None)
    before = load_file(str(tmp_path / "run" / "step-000001" / "model.safetensors"))
    after = load_file(str(tmp_path / "run" / "step-000002" / "model.safetensors"))
    fresh = COTS(ModelConfig.preset("tiny"))  # for the parameter names (buffers are copied, not averaged)
    names = [f"{module}.{name}" for module in MOMENTUM_MODULES for name, _ in getattr(fresh, module).named_parameters()]
    worst, per_micro_batch = 0.0, 0.0
    for key in names:
        online, twin = before[key], before[key.replace(".", "_m.", 1)]
        expected = m * twin + (1 - m) * online
        worst = max(worst, (after[key.replace(".", "_m.", 1)] - expected).abs().max().item())
        per_micro_batch = max(per_micro_batch, ((m * m * twin + (1 - m * m) * online) - expected).abs().max().item())
    assert per_micro_batch > 1e-4  # the test can tell the two apart
    assert worst <= 1e-6, worst


def test_a_video_pair_trains_on_the_embedding_search_uses(tmp_path):
    from tests.trainer.conftest import write_image, write_video
    from trainer.data import PairDataset, Record, collate_pairs

    torch.manual_seed(0)
    model = COTS(ModelConfig.preset("tiny")).eval()  # eval: no dropout, BatchNorm as at search time
    video = write_video(tmp_path / "clip.avi", frames=50)  # 10 s at 5 fps: 5 frames one every 2 s, 4 kept
    image = write_image(tmp_path / "still.png", size=(40, 30))
    records = [Record(str(image), ["a red still"], "image"), Record(str(video), ["a grey clip"], "video")]
    dataset = PairDataset(records, model.preprocess, frames=4)
    batch = collate_pairs([dataset[0], dataset[1]])
    assert batch["pixels"].shape == (5, 3, 64, 64) and batch["frame_owner"].tolist() == [0, 1, 1, 1, 1]
    model.training_step(batch)  # fills the queue: MCL has negatives on the next step
    pixels = batch["pixels"].clone().requires_grad_(True)
    out = model.training_step({"pixels": pixels, "texts": batch["texts"], "frame_owner": batch["frame_owner"]})
    frames = batch["pixels"][1:]
    assert torch.allclose(out["image_embedding"][1], model.encode_video(frames), atol=1e-5)
    assert torch.allclose(out["image_embedding"][0], model.encode_images(batch["pixels"][:1])[0], atol=1e-5)
    out["loss_mcl"].backward()  # with gradient: every frame of the clip shapes the loss
    assert all(pixels.grad[i].abs().sum() > 0 for i in range(1, 5))


def test_train_throughput_bench_trains_cmvm_only_with_a_trained_tokenizer(tmp_path, synth):
    import importlib.util

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("train_throughput", root / "bench" / "train_throughput.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tokenizer = _trained_tokenizer(tmp_path / "dvae", synth)
    for extra, cmvm in (([], False), (["--tokenizer", str(tokenizer)], True)):
        out = tmp_path / f"report-{cmvm}.json"
        bench.main(["--preset", "tiny", "--batch-size", "4", "--steps", "1", "--warmup", "0", "--device", "cpu",
                    "--json", str(out), *extra])
        assert json.loads(out.read_text())["cmvm"] is cmvm
