"""A fine-tune keeps its caption memory only when the held-out pairs agree (trainer.caption_memory)."""
import numpy as np
import pytest
import torch
from PIL import Image

from cots_core import COTS, ModelConfig
from trainer.caption_memory import attach_caption_memory
from trainer.data.records import Record

CAPTIONS = ["a red square", "a blue circle", "green stripes", "a yellow dot", "grey noise", "a black line",
            "two white birds", "an orange boat", "a wooden table", "snow on a roof", "a glass of milk", "old coins"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(len(CAPTIONS)):
        path = folder / f"photo {i}.png"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def fresh_model():
    """A random tiny model whose caption embeddings are told apart: its text projection is centred on
    these captions (a random text tower gives every caption nearly the same direction)."""
    torch.manual_seed(0)
    model = COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).eval()
    tokens = model.tokenize(CAPTIONS)
    with torch.no_grad():
        mean = model.text_encoder(tokens["input_ids"], tokens["attention_mask"]).global_feature.mean(0)
        model.text_projection.bias.copy_(-model.text_projection.weight @ mean)
    return model


def test_memory_kept_when_held_out_photos_are_found_better(photos):
    train = [Record(p, [c]) for p, c in zip(photos, CAPTIONS)]
    held_out = [Record(p, [c]) for p, c in zip(photos, CAPTIONS)]  # the same photos, captioned alike
    model = fresh_model()
    summary = attach_caption_memory(model, train, held_out, log=lambda _: None)
    assert summary["held_out_rsum_with"] > summary["held_out_rsum_without"]
    assert summary["entries"] == 2 * len(photos) == model.caption_memory.size


@pytest.mark.parametrize("drop, kept", [(20.0, True), (80.0, False)])
def test_memory_left_out_only_when_it_costs_the_held_out_more_than_one_item(photos, monkeypatch, drop, kept):
    # 12 held-out items: one item moves the rsum by at most 600 / 12 = 50. The measurement is replaced so
    # that the memory costs exactly ``drop``; the decision and what it leaves in the model are real.
    import trainer.caption_memory as caption_memory

    def measured(model, records, frames=8):
        return {"rsum": 500.0 - (drop if model.caption_memory.size else 0.0)}

    monkeypatch.setattr(caption_memory, "evaluate_retrieval", measured)
    records = [Record(p, [c]) for p, c in zip(photos, CAPTIONS)]
    model = fresh_model()
    messages = []
    summary = caption_memory.attach_caption_memory(model, records, records, log=messages.append)
    assert summary["held_out_rsum_with"] == 500.0 - drop
    assert (model.caption_memory.size == model.config.vision.caption_memory == summary["entries"] == 24) is kept
    assert ("left out" in messages[0]) is not kept
    if not kept:
        assert model.caption_memory.size == model.config.vision.caption_memory == 0


def test_unreadable_records_are_skipped(photos, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    train = [Record(p, [c]) for p, c in zip(photos, CAPTIONS)] + [Record(str(broken), ["nothing"])]
    model = fresh_model()
    assert attach_caption_memory(model, train, [], log=lambda _: None)["entries"] == len(photos)


def test_a_finetune_from_a_model_with_a_memory_starts_without_it(photos, tmp_path):
    from trainer.build import build_model
    from trainer.caption_memory import build_memory
    from trainer.config import TrainConfig

    model = fresh_model()
    model.set_caption_memory(build_memory(model, [Record(p, [c]) for p, c in zip(photos, CAPTIONS)]))
    model.save_pretrained(tmp_path / "remembering")
    messages = []
    tuned = build_model(TrainConfig(mode="finetune", init_from=str(tmp_path / "remembering")), messages.append)
    assert tuned.caption_memory.size == tuned.config.vision.caption_memory == 0
    assert any(f"remembers {len(photos)} captioned items" in m for m in messages)


def test_a_large_captioned_set_is_remembered_as_a_sample_and_says_so(photos, monkeypatch):
    monkeypatch.setattr("trainer.caption_memory.MAX_ENTRIES", 5)
    model, said = fresh_model(), []
    summary = attach_caption_memory(model, [Record(p, [c]) for p, c in zip(photos, CAPTIONS)], [], log=said.append)
    assert summary["entries"] == model.caption_memory.size == 5
    assert "a sample of the 12 readable ones (at most 5 are kept)" in said[-1]
    first = model.caption_memory.keys.clone()
    attach_caption_memory(model, [Record(p, [c]) for p, c in zip(photos, CAPTIONS)], [], log=said.append)
    assert torch.equal(model.caption_memory.keys, first)  # the same data, the same sample


def test_eval_never_scores_an_item_the_caption_memory_holds(tmp_path, monkeypatch, capsys):
    """The issue's leak: the held-out items go into the memory after the held-out check, so `cots eval --model
    RUN` on the run's own validation split scored items whose own captions the memory holds."""
    import json

    from trainer.config import DataConfig, OptimConfig, TrainConfig
    from trainer.evaluation_cli import run_eval
    from trainer.loop import main
    from trainer.memory_items import ITEMS_FILE
    from trainer.synth import generate_synthetic

    data, other = tmp_path / "synth", tmp_path / "other"
    generate_synthetic(24, data, seed=3, size=64)
    generate_synthetic(6, other, seed=4, size=64)
    base = dict(preset="tiny", steps=2, batch_size=4, seed=0, log_every=1, save_every=0, eval_every=0,
                progress=False, optim=OptimConfig(lr=1e-3, warmup_steps=0))
    main(TrainConfig(out=str(tmp_path / "pre"), data=DataConfig(train=str(data), val_fraction=0.0, augment=False),
                     **base), log=lambda _: None)
    # the held-out check keeps the memory whatever a 2-step model finds
    monkeypatch.setattr("trainer.caption_memory.evaluate_retrieval", lambda *args, **kwargs: {"rsum": 100.0})
    run = tmp_path / "run"
    main(TrainConfig(mode="finetune", init_from=str(tmp_path / "pre"), out=str(run),
                     data=DataConfig(train=str(data), val_fraction=0.25, augment=False), **base), log=lambda _: None)
    assert json.loads((run / "best" / "best_metrics.json").read_text())["caption_memory"]["holds_held_out"]
    remembered = [item["path"] for item in json.loads((run / "best" / ITEMS_FILE).read_text())["items"]]
    assert len(remembered) == 24

    with pytest.raises(ValueError, match="remembers its validation items") as refused:
        run_eval(str(run), None)
    assert "\n" not in str(refused.value)

    # --data mixing 4 remembered items with 6 unseen ones: the 4 are left out, in one line
    rows = [(path, "x") for path in remembered[:4]] + [(str(p), "y") for p in sorted(other.glob("*.png"))]
    (tmp_path / "mixed.csv").write_text("path,caption\n" + "".join(f"{p},{c}\n" for p, c in rows))
    capsys.readouterr()
    metrics = run_eval(str(run), str(tmp_path / "mixed.csv"))
    assert metrics["n_items"] == 6
    assert [line for line in capsys.readouterr().err.splitlines() if "left out" in line] == [
        "left out 4 items that the model's caption memory holds (scored: 6)"]

    # without the record of what it holds, nothing is scored (tests/trainer/test_eval_leak.py: through the CLI)
    (run / "best" / ITEMS_FILE).unlink()
    for data in (None, str(other)):
        with pytest.raises(ValueError, match=f"caption memory of 24 items but not the record .*{ITEMS_FILE}"):
            run_eval(str(run), data)
