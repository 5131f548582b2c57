"""The pieces of the fine-tuning recipe (issue 10): multi-positive MCL, the zero-initialised residual path of
the ConSE bridge, frozen towers."""
import math

import pytest
import torch

from cots_core import COTS, ModelConfig
from cots_core.losses import mcl_loss
from cots_core.model import caption_keys


def rows(*vectors):
    return torch.tensor(vectors, dtype=torch.float32)


def test_multi_positive_mcl_by_hand_and_equal_to_plain_without_positives():
    v, t = rows([1, 0]), rows([1, 0])
    q = rows([1, 0], [0, 1])  # queue row 0 has the same caption as the pair
    plain = mcl_loss(v, t, v, t, q, q, tau=1.0)
    assert mcl_loss(v, t, v, t, q, q, 1.0, torch.tensor([[False, False]])).item() == pytest.approx(plain.item())
    # logits [1 (pair), 1 (row 0), 0 (row 1)]: plain -log(e/(2e+1)) per direction; with row 0 a positive,
    # the mean over the two positives of -log(e/(2e+1)) -- the same here, so check a case where they differ
    assert plain.item() == pytest.approx(2 * -math.log(math.e / (2 * math.e + 1)), rel=1e-5)
    v2 = rows([1, 0])
    q2 = rows([0.5, 0.5], [0, 1])  # logits [1, 0.5, 0]
    z = math.e + math.e ** 0.5 + 1
    multi = mcl_loss(v2, v2, v2, v2, q2, q2, 1.0, torch.tensor([[True, False]]))
    assert multi.item() == pytest.approx(2 * -(math.log(math.e / z) + math.log(math.e ** 0.5 / z)) / 2, rel=1e-5)


def test_caption_keys_ignore_case_and_spacing():
    keys = caption_keys(["A cow.", "a  cow. ", "A pig."])
    assert keys[0] == keys[1] != keys[2] and bool((keys >= 0).all())


@pytest.fixture(scope="module")
def conse():
    torch.manual_seed(0)
    config = ModelConfig.preset("tiny").replace(vision={"projection": "conse", "num_classes": 10,
                                                        "conse_residual_scale": 0.1})
    return COTS(config)


def test_residual_starts_at_zero_and_old_checkpoints_load_without_it(conse, tmp_path):
    projection = conse.image_projection
    x = torch.randn(4, conse.image_encoder.width)
    bridge_only = projection.class_embeddings((projection.classifier(x) / projection.log_temperature.exp()).softmax(-1))
    assert torch.allclose(projection(x), bridge_only)
    pixels = torch.randn(2, 3, 64, 64)
    before = conse.encode_images(pixels)
    conse.save_pretrained(tmp_path)
    from safetensors.torch import load_file, save_file

    state = {k: v for k, v in load_file(str(tmp_path / "model.safetensors")).items() if ".residual." not in k}
    save_file(state, str(tmp_path / "model.safetensors"))  # as written before the residual existed
    old = COTS.from_pretrained(tmp_path)
    assert torch.allclose(old.encode_images(pixels), before, atol=1e-6)
    assert old.model_id.split("-")[-1] == conse.model_id.split("-")[-1]  # a zero residual leaves the id alone


def test_frozen_towers_get_no_gradient_and_compute_in_eval_mode(conse):
    model = COTS(conse.config)
    model.image_encoder.requires_grad_(False)
    model.text_encoder.requires_grad_(False)
    model.config = model.config.replace(loss={"use_mvlm": False})
    model.train()
    assert not model.text_encoder.training and not model.text_encoder_m.training
    model.training_step({"pixels": torch.randn(4, 3, 64, 64), "texts": ["d", "e", "f", "g"]})  # fills the queue
    out = model.training_step({"pixels": torch.randn(4, 3, 64, 64), "texts": ["a", "b", "a", "c"]})
    out["loss"].backward()
    assert all(p.grad is None for p in model.image_encoder.parameters())
    assert model.image_projection.residual.weight.grad.abs().sum() > 0  # the residual learns from step 0
    assert model.text_projection.weight.grad.abs().sum() > 0
    assert model.queue.valid_keys().tolist() == caption_keys(["d", "e", "f", "g", "a", "b", "a", "c"]).tolist()


def test_strict_load_tolerates_only_the_state_added_later(conse, tmp_path):
    from safetensors.torch import load_file, save_file

    from cots_core import ModelLoadError
    from cots_core.heads import RESIDUAL_KEYS
    from cots_core.serialization import load_state_dict_file

    conse.save_pretrained(tmp_path)
    path = tmp_path / "model.safetensors"
    state = {k: v for k, v in load_file(str(path)).items() if ".residual." not in k and k != "queue.keys"}
    save_file(state, str(path))  # a training checkpoint written before the residual and the caption keys
    fresh = COTS(conse.config)
    load_state_dict_file(fresh, path, strict=True, may_be_missing=RESIDUAL_KEYS + ("queue.keys",))
    assert not fresh.image_projection.residual.weight.any() and bool((fresh.queue.keys == -1).all())
    with pytest.raises(ModelLoadError, match="missing"):
        load_state_dict_file(fresh, path, strict=True)
