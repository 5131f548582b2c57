"""Discrete VAE image tokenizer (DALL-E style, as BEiT uses): images -> a grid of discrete token ids.

Training uses the Gumbel-softmax relaxation: the encoder gives logits over the vocabulary for each grid
cell, a relaxed one-hot sample selects a codebook mixture, and the decoder reconstructs the image.
The grid equals the image tower's token grid, so each token id is the target for one image token in CMVM.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cots_core.config import TokenizerConfig
from cots_core.errors import ModelLoadError
from cots_core.serialization import load_state_dict_file, save_state_dict_file


class _ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DiscreteVAE(nn.Module):
    def __init__(self, config: TokenizerConfig, image_size: int, grid: tuple[int, int]):
        super().__init__()
        self.config = config
        self.image_size = image_size
        self.grid = tuple(grid)
        if not self.fits(image_size, grid):
            raise ValueError(f"dVAE needs a square grid that divides the image by a power of two, "
                             f"got image {image_size} and grid {grid}")
        downsamples = int(round(math.log2(image_size // grid[0])))
        hidden = config.hidden_dim
        encoder: list[nn.Module] = [nn.Conv2d(3, hidden, 3, padding=1)]
        for _ in range(downsamples):
            encoder += [nn.Conv2d(hidden, hidden, 4, stride=2, padding=1), _ResBlock(hidden)]
        encoder += [nn.ReLU(), nn.Conv2d(hidden, config.vocab_size, 1)]
        self.encoder = nn.Sequential(*encoder)
        self.codebook = nn.Embedding(config.vocab_size, config.codebook_dim)
        decoder: list[nn.Module] = [nn.Conv2d(config.codebook_dim, hidden, 1), _ResBlock(hidden)]
        for _ in range(downsamples):
            decoder += [nn.ConvTranspose2d(hidden, hidden, 4, stride=2, padding=1), _ResBlock(hidden)]
        decoder += [nn.ReLU(), nn.Conv2d(hidden, 3, 1)]
        self.decoder = nn.Sequential(*decoder)

    @staticmethod
    def fits(image_size: int, grid: tuple[int, int]) -> bool:
        """Whether a dVAE can tokenize this image onto this grid: square, and the image a power-of-two
        multiple of it (its encoder halves the image that many times). ViT-L/14 at 224 px (16x16) does not."""
        factor = image_size // grid[0] if grid[0] else 0
        return factor >= 1 and factor & (factor - 1) == 0 and image_size % grid[0] == 0 and grid[0] == grid[1]

    def forward(self, pixels: torch.Tensor, tau: float | None = None) -> dict[str, torch.Tensor]:
        """Training pass: Gumbel-softmax relaxation. Returns loss, recon_loss, kl and the reconstruction."""
        tau = self.config.tau_start if tau is None else tau
        logits = self.encoder(pixels)  # [B, V, h, w]
        soft_one_hot = F.gumbel_softmax(logits, tau=tau, dim=1, hard=False)
        codes = torch.einsum("bvhw,vd->bdhw", soft_one_hot, self.codebook.weight)
        reconstruction = self.decoder(codes)
        recon_loss = F.mse_loss(reconstruction, pixels)
        log_q = F.log_softmax(logits, dim=1)
        # KL(q || uniform) per grid cell, averaged
        kl = (log_q.exp() * (log_q + math.log(self.config.vocab_size))).sum(dim=1).mean()
        loss = recon_loss + self.config.kl_weight * kl
        return {"loss": loss, "recon_loss": recon_loss, "kl": kl, "reconstruction": reconstruction}

    @torch.no_grad()
    def codebook_indices(self, pixels: torch.Tensor) -> torch.Tensor:
        """Token ids [B, h*w] (row-major over the grid), the argmax of the encoder's logits."""
        return self.encoder(pixels).argmax(dim=1).flatten(1)

    @torch.no_grad()
    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        codes = self.codebook(indices).view(indices.shape[0], *self.grid, -1).permute(0, 3, 1, 2)
        return self.decoder(codes)

    def tau_at(self, progress: float) -> float:
        """Exponentially annealed Gumbel temperature for training progress in [0, 1]."""
        start, end = self.config.tau_start, self.config.tau_end
        return start * (end / start) ** min(max(progress, 0.0), 1.0)

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"tokenizer": self.config.__dict__, "image_size": self.image_size, "grid": list(self.grid)}
        (directory / "dvae_config.json").write_text(json.dumps(meta, indent=2) + "\n")
        save_state_dict_file(self.state_dict(), directory / "dvae.safetensors")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> DiscreteVAE:
        directory = Path(directory)
        config_path = directory / "dvae_config.json"
        if not config_path.is_file():
            raise ModelLoadError(f"no dVAE tokenizer at {directory} (missing {config_path.name})")
        try:
            meta = json.loads(config_path.read_text())
            model = cls(TokenizerConfig(**meta["tokenizer"]), meta["image_size"], tuple(meta["grid"]))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ModelLoadError(f"dVAE config {config_path} is unreadable: {error}") from error
        load_state_dict_file(model, directory / "dvae.safetensors")
        return model
