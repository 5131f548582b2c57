"""The caption memory of a fine-tune (cots_core.heads.CaptionMemory, issue 10): a photo like a remembered one
inherits its caption, a photo unlike all of them keeps its embedding, and the memory travels with the
checkpoint, its model id and the ONNX image path."""
import pytest
import torch
import torch.nn.functional as F

from cots_core import COTS, ModelConfig
from cots_core.heads import CaptionMemory
from cots_core.image_runtime import RUNTIME_ENV, load_onnx_image_encoder


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return COTS(ModelConfig.preset("tiny"), pretrained_backbones=False).eval()


def pooled(model, pixels):
    with torch.no_grad():
        return model.image_encoder(pixels).global_feature


def with_memory(model, features, captions, null_similarity=0.2):
    memory = CaptionMemory.build(features, captions, temperature=0.05, null_similarity=null_similarity, scale=0.5)
    clone = COTS(model.config, pretrained_backbones=False).eval()
    clone.load_state_dict(model.state_dict())
    clone.set_caption_memory(memory)
    return clone


def test_empty_memory_is_the_identity_and_adds_no_state(tiny):
    assert tiny.config.vision.caption_memory == 0
    assert not any(k.startswith("caption_memory.") for k in tiny.state_dict())
    e = F.normalize(torch.randn(3, tiny.config.embed_dim), dim=-1)
    assert torch.equal(tiny.caption_memory(torch.randn(3, tiny.image_encoder.width), e), e)


def test_a_photo_like_a_remembered_one_inherits_its_caption_and_others_do_not(tiny):
    torch.manual_seed(1)
    photos = torch.rand(6, 3, 64, 64)
    captions = F.normalize(torch.randn(5, tiny.config.embed_dim), dim=-1)
    remembered = with_memory(tiny, pooled(tiny, photos[:5]), captions)
    before, after = tiny.encode_images(photos), remembered.encode_images(photos)
    # each remembered photo moves towards its own caption, further than towards any other caption
    gain = (after[:5] - before[:5]) @ captions.t()
    assert bool((gain.diagonal() > 0.2).all()) and bool((gain.argmax(dim=1) == torch.arange(5)).all())
    # a memory whose "none of them" slot beats every cosine leaves a photo where it was
    unmoved = with_memory(tiny, pooled(tiny, photos[:5]), captions, null_similarity=2.0).encode_images(photos[5:])
    assert F.cosine_similarity(unmoved, before[5:]).min() > 0.999


def test_memory_is_saved_loaded_and_changes_the_model_id(tiny, tmp_path):
    photos = torch.rand(4, 3, 64, 64)
    remembered = with_memory(tiny, pooled(tiny, photos), F.normalize(torch.randn(4, tiny.config.embed_dim), dim=-1))
    assert remembered.model_id != tiny.model_id and remembered.config.vision.caption_memory == 4
    remembered.save_pretrained(tmp_path, inference_only=True)
    loaded = COTS.from_pretrained(tmp_path)
    assert loaded.caption_memory.size == 4 and loaded.model_id == remembered.model_id
    assert torch.allclose(loaded.encode_images(photos), remembered.encode_images(photos), atol=1e-6)


@pytest.mark.slow  # one ONNX export (~10 s on 2 cores)
def test_onnx_image_path_includes_the_memory(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(RUNTIME_ENV, "auto")
    photos = torch.rand(4, 3, 64, 64)
    remembered = with_memory(tiny, pooled(tiny, photos), F.normalize(torch.randn(4, tiny.config.embed_dim), dim=-1))
    encoder = load_onnx_image_encoder(remembered, threads=2, cache_root=tmp_path)
    assert encoder is not None
    expected = remembered.encode_images(photos)
    assert (expected - tiny.encode_images(photos)).norm(dim=-1).min() > 0.1  # the memory does move these
    assert F.cosine_similarity(encoder.encode_images(photos), expected, dim=-1).min() >= 0.999
