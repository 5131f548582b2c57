import json

import numpy as np
import pytest
import torch
from PIL import Image

from cots_core import COTS, ModelConfig, ModelLoadError
from cots_core.encoders import TimmImageEncoder

TEXTS = ["a red circle", "a blue square", "two green triangles", "a yellow star",
         "a big red square", "three blue circles", "a small green star", "a white triangle"]


# CMVM is off by default (its targets need a trained dVAE); these tests check its wiring, so they turn it on
WITH_CMVM = {"loss": {"use_cmvm": True}}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return COTS(ModelConfig.preset("tiny", **WITH_CMVM))


def batch(size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {"pixels": torch.randn(size, 3, 64, 64, generator=generator), "texts": TEXTS[:size]}


def _encoder_params(module):
    return [p for p in module.parameters() if p.requires_grad]


def test_every_loss_reaches_both_encoders(tiny):
    tiny.train()
    tiny.training_step(batch(seed=1))  # fill the queue so that MCL negatives and KL exist
    out = tiny.training_step(batch(seed=2))
    image_params = _encoder_params(tiny.image_encoder)
    text_params = _encoder_params(tiny.text_encoder)
    for name in ("loss_mcl", "loss_kl", "loss_cmlm", "loss_cmvm"):
        assert out[name].item() > 0, name
        grads = torch.autograd.grad(out[name], image_params + text_params, retain_graph=True, allow_unused=True)
        image_grads, text_grads = grads[:len(image_params)], grads[len(image_params):]
        assert any(g is not None and g.abs().sum() > 0 for g in image_grads), f"{name} misses the image encoder"
        assert any(g is not None and g.abs().sum() > 0 for g in text_grads), f"{name} misses the text encoder"
    out["loss"].backward()
    for frozen in (tiny.image_encoder_m, tiny.text_encoder_m, tiny.image_projection_m, tiny.text_projection_m,
                   tiny.image_tokenizer):
        assert all(p.grad is None and not p.requires_grad for p in frozen.parameters())
    tiny.zero_grad(set_to_none=True)


def test_training_step_outputs_and_enqueues_all_pairs():
    torch.manual_seed(0)
    model = COTS(ModelConfig.preset("tiny", **WITH_CMVM))
    out = model.training_step(batch())
    for key in ("loss", "loss_mcl", "loss_kl", "loss_cmlm", "loss_cmvm", "amf_kept", "amf_threshold"):
        assert key in out and torch.isfinite(out[key]) | torch.isinf(out["amf_threshold"])
    assert int(model.queue.filled) == 8
    visual_tokens = torch.zeros(8, 64, dtype=torch.long)
    tokens = model.tokenize(TEXTS)
    out = model.training_step({**batch(), **tokens, "visual_tokens": visual_tokens})
    assert int(model.queue.filled) == 16 and torch.isfinite(out["loss"])


def test_amf_filtering_every_pair_gives_a_defined_zero():
    torch.manual_seed(0)
    model = COTS(ModelConfig.preset("tiny", loss={"amf_min_queue": 4}))
    with torch.no_grad():  # a warm similarity queue far above any real pair's similarity
        model.queue.similarity[:16] = torch.linspace(5.0, 6.0, 16)
        model.queue.filled.fill_(16)
        model.queue.pointer.fill_(16)
    out = model.training_step(batch())
    assert out["amf_kept"].item() == 0.0
    assert out["loss"].item() == 0.0 and not torch.isnan(out["loss"])
    out["loss"].backward()
    assert int(model.queue.filled) == 24  # filtered pairs are still enqueued


@pytest.mark.slow  # 200 training steps (~15 s)
def test_tiny_model_overfits_one_batch(seed_offset, record_measure):
    torch.manual_seed(seed_offset)
    model = COTS(ModelConfig.preset("tiny", **WITH_CMVM))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    data = batch(seed=seed_offset)
    history = []
    for _ in range(200):
        out = model.training_step(data)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad()
        history.append(out["loss"].item())
    first = np.mean(history[1:6])  # from step 1 on, every term is active (the queue is no longer empty)
    last = np.mean(history[-5:])
    record_measure("last/first loss", last / first, 0.5, "max")
    assert last <= 0.5 * first, (first, last)


def test_save_and_load_give_identical_embeddings(tiny, tmp_path):
    tiny.eval()
    tiny.save_pretrained(tmp_path / "ckpt")
    loaded = COTS.from_pretrained(tmp_path / "ckpt")
    pixels = torch.randn(3, 3, 64, 64)
    assert torch.equal(tiny.encode_images(pixels), loaded.encode_images(pixels))
    assert torch.equal(tiny.encode_texts(TEXTS), loaded.encode_texts(TEXTS))
    assert torch.equal(tiny.queue.image, loaded.queue.image)
    assert loaded.model_id == tiny.model_id


def test_inference_only_checkpoint_rebuilds_momentum(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "slim", inference_only=True)
    loaded = COTS.from_pretrained(tmp_path / "slim")
    # inference holds no momentum copies (they would double a large model's memory); training builds them
    assert not any(name.endswith("_m") for name, _ in loaded.named_children())
    loaded.train()
    for online, twin in zip(loaded.image_encoder.parameters(), loaded.image_encoder_m.parameters()):
        assert torch.equal(online, twin)
    assert torch.equal(tiny.encode_texts(TEXTS), loaded.encode_texts(TEXTS))


def test_corrupt_truncated_missing_and_mismatched_checkpoints(tiny, tmp_path):
    directory = tmp_path / "ckpt"
    tiny.save_pretrained(directory)
    weights = directory / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        COTS.from_pretrained(directory)
    weights.unlink()
    with pytest.raises(ModelLoadError, match="not found.*model.safetensors"):
        COTS.from_pretrained(directory)
    weights.write_bytes(data)
    config = json.loads((directory / "config.json").read_text())
    config["embed_dim"] = 32
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="does not match"):
        COTS.from_pretrained(directory)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="config.json"):
        COTS.from_pretrained(directory)
    with pytest.raises(ModelLoadError, match="no model at"):
        COTS.from_pretrained(tmp_path / "nowhere")


def test_encode_video_of_copies_equals_the_frame(tiny):
    frame = torch.randn(1, 3, 64, 64)
    video = tiny.encode_video(frame.repeat(5, 1, 1, 1))
    assert torch.allclose(video, tiny.encode_images(frame)[0], atol=1e-6)
    assert video.norm().item() == pytest.approx(1.0, abs=1e-5)


def test_embeddings_are_unit_length_and_deterministic(tiny):
    tiny.train()  # encode_* must switch dropout off by themselves
    first, second = tiny.encode_texts(TEXTS), tiny.encode_texts(TEXTS)
    assert torch.equal(first, second)
    assert torch.allclose(first.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)
    assert tiny.training


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "I;16", "I", "F", "CMYK", "1"])
def test_preprocess_accepts_any_pil_mode(tiny, mode):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (50, 80, 3), dtype=np.uint8)).convert(mode) \
        if mode not in ("I;16", "I", "F") else Image.fromarray(np.arange(4000, dtype=np.uint16).reshape(50, 80) * 16)
    if mode in ("I", "F"):
        image = image.convert(mode)
    pixels = tiny.preprocess(image)
    assert pixels.shape == (3, 64, 64) and torch.isfinite(pixels).all()


def test_alpha_is_composited_on_white(tiny):
    transparent = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    assert torch.allclose(tiny.preprocess(transparent), tiny.preprocess(white))


def test_cnn_image_tower_gives_feature_map_tokens_and_masked_pass():
    config = ModelConfig.preset("tiny", vision={"model_name": "resnet10t", "model_kwargs": {}}, **WITH_CMVM)
    model = COTS(config)
    assert model.grid == (2, 2)
    out = model.training_step(batch(4))
    assert torch.isfinite(out["loss"]) and out["loss_cmvm"].item() > 0


@pytest.mark.parametrize("preset", ["tiny", "cots-lite", "vit-b16-bert-base"])
def test_cmvm_is_off_by_default_and_the_tokenizer_untrained(preset):
    config = ModelConfig.preset(preset)
    assert config.loss.use_cmvm is False and config.tokenizer.trained is False
    assert ModelConfig().loss.use_cmvm is False


def test_default_tiny_model_trains_no_cmvm():
    torch.manual_seed(0)
    out = COTS(ModelConfig.preset("tiny")).training_step(batch())
    assert out["loss_cmvm"].item() == 0.0 and out["loss_cmlm"].item() > 0


def test_tokenizer_trained_survives_save_and_load_and_older_configs_read_untrained(tmp_path):
    torch.manual_seed(0)
    model = COTS(ModelConfig.preset("tiny", tokenizer={"trained": True}))
    model.save_pretrained(tmp_path / "trained")
    assert COTS.from_pretrained(tmp_path / "trained").config.tokenizer.trained is True
    config_file = tmp_path / "trained" / "config.json"
    data = json.loads(config_file.read_text())
    del data["tokenizer"]["trained"]  # a checkpoint saved before the field existed
    config_file.write_text(json.dumps(data))
    assert COTS.from_pretrained(tmp_path / "trained").config.tokenizer.trained is False


def test_caption_positives_flag_switches_identical_captions_between_positive_and_negative():
    losses = {}
    for positives in (True, False):
        torch.manual_seed(0)
        model = COTS(ModelConfig.preset("tiny", loss={"caption_positives": positives, "use_mvlm": False}))
        model.training_step(batch(seed=1))
        losses[positives] = model.training_step(batch(seed=2))["loss_mcl"].item()  # same captions as queued
        keys = model.queue.valid_keys()
        assert bool((keys >= 0).all()) if positives else bool((keys == -1).all())
    assert abs(losses[True] - losses[False]) > 1e-3, losses  # the flag reaches the loss


def test_paper_preset_has_a_24x24_grid():
    config = ModelConfig.preset("vit-b16-bert-base")
    encoder = TimmImageEncoder(config.vision, config.image_size, pretrained=False)
    assert encoder.grid == (24, 24) and encoder.width == 768
    assert config.embed_dim == 768 and config.queue.size >= 10000


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ModelLoadError, match="tiny"):
        ModelConfig.preset("nope")


def test_learned_temperature_moves_is_clamped_and_is_saved(tmp_path):
    torch.manual_seed(0)
    model = COTS(ModelConfig.preset("tiny", queue={"learn_temperature": True, "temperature": 0.07}))
    model.train()
    optimizer = torch.optim.Adam([model.temperature], lr=2e-3)
    for seed in range(4):
        model.training_step(batch(seed=seed))["loss"].backward()
        if seed:  # the first step has an empty queue: nothing to contrast yet
            assert model.temperature.grad is not None and model.temperature.grad.item() != 0
        optimizer.step()
        optimizer.zero_grad()
    learned = model.contrastive_temperature().item()
    assert learned != pytest.approx(0.07, abs=1e-4)
    model.save_pretrained(tmp_path / "m", inference_only=True)
    assert json.loads((tmp_path / "m" / "config.json").read_text())["queue"]["temperature"] == \
        pytest.approx(learned, abs=1e-6)
    assert COTS.from_pretrained(tmp_path / "m").contrastive_temperature().item() == pytest.approx(learned, abs=1e-6)
    model.temperature.data.fill_(10.0)  # far outside: the losses see the clamp's upper end
    assert model.contrastive_temperature().item() == 0.5


def test_temperature_is_fixed_unless_asked():
    model = COTS(ModelConfig.preset("tiny"))
    assert not model.temperature.requires_grad
    assert model.contrastive_temperature().item() == pytest.approx(0.07)


def _state_numel(model) -> int:
    """Numbers the model holds (each tensor once, however many names it has)."""
    seen = {t.data_ptr(): t.numel() for t in list(model.parameters()) + list(model.buffers())}
    return sum(seen.values())


def test_a_frozen_tower_is_its_own_momentum_twin_and_a_trained_one_gets_a_copy():
    torch.manual_seed(0)
    model = COTS(ModelConfig.preset("tiny", loss={"use_mvlm": False}))
    model.image_encoder.requires_grad_(False)
    model.text_encoder.requires_grad_(False)
    before = _state_numel(model)
    model.train()
    # no copy, no EMA for the frozen towers: only the (trained) projections are doubled
    assert model.image_encoder_m is model.image_encoder and model.text_encoder_m is model.text_encoder
    assert model.image_projection_m is not model.image_projection
    projections = sum(p.numel() for m in (model.image_projection, model.text_projection) for p in m.parameters())
    assert _state_numel(model) - before == projections
    assert not any(k.startswith(("image_encoder_m.", "text_encoder_m.")) for k in model.state_dict())
    model.training_step(batch(seed=1))
    out = model.training_step(batch(seed=2))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and model.text_projection.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.image_encoder.parameters())

    # a tower unfrozen later gets its copy then, equal to it; frozen again, the copy goes
    model.image_encoder.requires_grad_(True)
    model.train()
    assert model.image_encoder_m is not model.image_encoder
    assert all(torch.equal(a, b) for a, b in zip(model.image_encoder.parameters(),
                                                 model.image_encoder_m.parameters()))
    assert not any(p.requires_grad for p in model.image_encoder_m.parameters())
    model.image_encoder.requires_grad_(False)
    model.train()
    assert model.image_encoder_m is model.image_encoder


def test_a_frozen_tower_model_saves_and_loads_without_twin_keys(tmp_path):
    torch.manual_seed(0)
    model = COTS(ModelConfig.preset("tiny", loss={"use_mvlm": False}))
    model.text_encoder.requires_grad_(False)
    model.train()
    model.training_step(batch())
    model.save_pretrained(tmp_path / "frozen")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "frozen" / "model.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())
    assert "text_projection_m.weight" in keys and not any(k.startswith("text_encoder_m.") for k in keys)
    loaded = COTS.from_pretrained(tmp_path / "frozen")
    assert torch.equal(loaded.encode_texts(TEXTS), model.encode_texts(TEXTS))
    assert torch.equal(loaded.queue.image, model.queue.image)


def test_another_caption_of_a_queued_item_is_a_positive():
    """The same photos come back with other captions: with item keys their queued pairs are positives."""
    items = torch.arange(8) + 1
    other_captions = {"texts": [text.upper() + " again" for text in TEXTS]}
    losses = {}
    for with_items in (True, False):
        torch.manual_seed(0)
        model = COTS(ModelConfig.preset("tiny", loss={"use_mvlm": False}))
        model.training_step({**batch(seed=1), "item_keys": items})
        assert model.queue.valid_item_keys().tolist() == items.tolist()
        second = {**batch(seed=1), **other_captions, **({"item_keys": items} if with_items else {})}
        losses[with_items] = model.training_step(second)["loss_mcl"].item()
    assert abs(losses[True] - losses[False]) > 1e-3, losses  # the item rule reaches the loss
