import pytest
import torch

from cots_core import COTS, ModelConfig, ModelLoadError
from cots_core.config import TokenizerConfig
from cots_core.dvae import DiscreteVAE


def test_dvae_grid_matches_the_image_tower():
    model = COTS(ModelConfig.preset("tiny"))
    tokens = model.image_tokenizer.codebook_indices(torch.randn(2, 3, 64, 64))
    assert tokens.shape == (2, model.grid[0] * model.grid[1])
    assert tokens.max() < model.config.tokenizer.vocab_size


@pytest.mark.slow  # 300 training steps (~50 s on 2 shared cores); its round trip also runs untrained below
def test_dvae_learns_to_reconstruct_and_round_trips(tmp_path, seed_offset, record_measure):
    torch.manual_seed(seed_offset)
    dvae = DiscreteVAE(TokenizerConfig(vocab_size=32, hidden_dim=16, codebook_dim=16), 32, (4, 4))
    # images made of 8x8 cells of four flat colours: exactly what a 4x4 token grid can describe
    palette = torch.tensor([[1.0, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, 1]])
    cells = palette[torch.randint(4, (8, 4, 4))].permute(0, 3, 1, 2)
    images = cells.repeat_interleave(8, dim=2).repeat_interleave(8, dim=3)
    optimizer = torch.optim.Adam(dvae.parameters(), lr=3e-3)
    # A constant temperature: annealing it down within a few hundred steps freezes the token assignment
    # early, and whether colours then share a token is luck (final/first ratio 0.03 to 0.47 over seeds).
    for _ in range(300):
        out = dvae(images, tau=1.0)
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    # What a tokenizer is for: its discrete ids alone rebuild the image. Against the error of the best
    # constant image (the images' variance), not against a first noisy training step.
    tokens = dvae.codebook_indices(images)
    token_error = torch.nn.functional.mse_loss(dvae.decode_indices(tokens), images).item()
    ratio = token_error / images.var(correction=0).item()
    record_measure("token reconstruction MSE / image variance", ratio, 0.3, "max")
    assert ratio < 0.3
    dvae.save_pretrained(tmp_path / "tok")
    loaded = DiscreteVAE.from_pretrained(tmp_path / "tok")
    assert torch.equal(loaded.codebook_indices(images), tokens)
    assert loaded.decode_indices(tokens).shape == images.shape


def test_dvae_save_and_load_give_the_same_tokens(tmp_path):
    """The round trip of the learning test above, untrained, for the fast lane (``make check``)."""
    torch.manual_seed(0)
    dvae = DiscreteVAE(TokenizerConfig(vocab_size=32, hidden_dim=16, codebook_dim=16), 32, (4, 4))
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    tokens = dvae.codebook_indices(images)
    dvae.save_pretrained(tmp_path / "tok")
    loaded = DiscreteVAE.from_pretrained(tmp_path / "tok")
    assert torch.equal(loaded.codebook_indices(images), tokens)
    assert torch.equal(loaded.decode_indices(tokens), dvae.decode_indices(tokens))


def test_dvae_missing_or_bad_grid():
    with pytest.raises(ModelLoadError, match="dvae_config.json"):
        DiscreteVAE.from_pretrained("/nonexistent")
    with pytest.raises(ValueError, match="power of two"):
        DiscreteVAE(TokenizerConfig(), 96, (7, 7))
