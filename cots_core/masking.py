"""Input masking for the token-level objectives: BERT's 80/10/10 word masking, BEiT's block-wise patch masking."""
from __future__ import annotations

import math

import torch

IGNORE_INDEX = -100


def mask_words(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list[int], mask_id: int,
               vocab_size: int, probability: float = 0.15,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: choose `probability` of the real word pieces; of those 80% -> [MASK], 10% -> a random
    word, 10% unchanged. Returns (masked_ids, labels) with labels = original id at chosen places, -100 elsewhere.
    At least one word per text with a word is chosen, so every text contributes to the loss.
    """
    device = input_ids.device
    candidates = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(special_ids, device=device))
    scores = torch.rand(input_ids.shape, generator=generator, device="cpu").to(device)
    chosen = candidates & (scores < probability)
    # guarantee one masked word per text that has any word: the candidate with the lowest score
    lowest = torch.where(candidates, scores, torch.full_like(scores, 2.0)).argmin(dim=1)
    has_word = candidates.any(dim=1)
    chosen[torch.arange(len(chosen), device=device)[has_word], lowest[has_word]] = True

    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    action = torch.rand(input_ids.shape, generator=generator, device="cpu").to(device)
    masked = input_ids.clone()
    masked[chosen & (action < 0.8)] = mask_id
    random_words = torch.randint(vocab_size, input_ids.shape, generator=generator, device="cpu").to(device)
    replace = chosen & (action >= 0.8) & (action < 0.9)
    masked[replace] = random_words[replace]
    return masked, labels


def block_mask(grid: tuple[int, int], ratio: float = 0.4, min_block: int = 16, max_aspect: float = 1 / 0.3,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """BEiT block-wise masking of a token grid: rectangles of random area (>= min_block tokens) and aspect
    ratio in [1/max_aspect, max_aspect] are added until about `ratio` of the grid is masked.
    Returns a bool tensor [H, W]; at least one token is masked.
    """
    height, width = grid
    total = height * width
    target = max(1, round(ratio * total))
    mask = torch.zeros(height, width, dtype=torch.bool)
    min_block = max(1, min(min_block, target))
    log_aspect = (math.log(1 / max_aspect), math.log(max_aspect))
    for _ in range(100):
        if int(mask.sum()) >= target:
            break
        remaining = target - int(mask.sum())
        area = _uniform(min_block, max(min_block, remaining), generator)
        aspect = math.exp(_uniform(*log_aspect, generator))
        h = max(1, min(height, round(math.sqrt(area * aspect))))
        w = max(1, min(width, round(math.sqrt(area / aspect))))
        top = int(torch.randint(height - h + 1, (1,), generator=generator))
        left = int(torch.randint(width - w + 1, (1,), generator=generator))
        # add only as many new tokens as still needed, so the ratio is not overshot by a large block
        block = torch.zeros_like(mask)
        block[top:top + h, left:left + w] = True
        new = block & ~mask
        if int(new.sum()) > remaining:
            flat = new.flatten().nonzero().squeeze(1)[:remaining]
            new = torch.zeros(total, dtype=torch.bool)
            new[flat] = True
            new = new.view(height, width)
        mask |= new
    return mask


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def block_mask_batch(batch_size: int, grid: tuple[int, int], ratio: float, min_block: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """[B, H*W] bool masks, one block mask per image."""
    return torch.stack([block_mask(grid, ratio, min_block, generator=generator).flatten()
                        for _ in range(batch_size)])
