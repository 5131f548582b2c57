"""Momentum (EMA) copies of the encoders and the paired feature/similarity queues, all state in buffers."""
from __future__ import annotations

import copy

import torch
from torch import nn

from cots_core.distributed import all_gather_no_grad


def make_momentum_copy(module: nn.Module) -> nn.Module:
    """A frozen deep copy: gets no gradient, only EMA updates."""
    twin = copy.deepcopy(module)
    for parameter in twin.parameters():
        parameter.requires_grad_(False)
    return twin


@torch.no_grad()
def momentum_update(online: nn.Module, momentum: nn.Module, m: float) -> None:
    """theta_m <- m * theta_m + (1 - m) * theta, in place; buffers are copied."""
    online_params = list(online.parameters())
    momentum_params = list(momentum.parameters())
    if not momentum_params:
        return
    torch._foreach_mul_(momentum_params, m)
    torch._foreach_add_(momentum_params, online_params, alpha=1.0 - m)
    for online_buffer, momentum_buffer in zip(online.buffers(), momentum.buffers()):
        momentum_buffer.copy_(online_buffer)


class FeatureQueue(nn.Module):
    """Paired FIFO queues of momentum image features, text features and their similarities.

    Row k of `image`, `text` and `similarity` always belongs to the same pair: all three are written at
    the same pointer. Only the first `filled` rows are valid until the queue has wrapped once.
    """

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.size = size
        self.register_buffer("image", torch.zeros(size, dim))
        self.register_buffer("text", torch.zeros(size, dim))
        self.register_buffer("similarity", torch.zeros(size))
        # caption key of each row (model.caption_keys); -1: unknown, equal to no caption
        self.register_buffer("keys", torch.full((size,), -1, dtype=torch.long))
        # item key of each row (the photo or video a pair comes from; keys are >= 0); -1: unknown, equal to none
        self.register_buffer("item_keys", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))

    def valid(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        count = int(self.filled)
        return self.image[:count], self.text[:count], self.similarity[:count]

    def valid_keys(self) -> torch.Tensor:
        return self.keys[: int(self.filled)]

    def valid_item_keys(self) -> torch.Tensor:
        return self.item_keys[: int(self.filled)]

    def positives(self, keys: torch.Tensor | None, item_keys: torch.Tensor | None = None) -> torch.Tensor | None:
        """[B, filled] bool: queued rows that are positives of each batch pair, those with the same caption
        key or the same item key (a photo's other captions); None when the batch brings neither."""
        rules = [batch.to(self.keys.device)[:, None] == queued[None, :]
                 for batch, queued in ((keys, self.valid_keys()), (item_keys, self.valid_item_keys()))
                 if batch is not None]
        return torch.stack(rules).any(dim=0) if rules else None

    @torch.no_grad()
    def enqueue(self, image: torch.Tensor, text: torch.Tensor, similarity: torch.Tensor,
                keys: torch.Tensor | None = None, item_keys: torch.Tensor | None = None) -> None:
        """Push a batch (gathered from every rank first, in rank order), overwriting the oldest rows."""
        # made before the gather: a rank's own rows (sized after it, they were gathered twice under DDP)
        unknown = torch.full((image.shape[0],), -1, dtype=torch.long, device=self.keys.device)
        image = all_gather_no_grad(image.detach().float())
        text = all_gather_no_grad(text.detach().float())
        similarity = all_gather_no_grad(similarity.detach().float())
        keys = all_gather_no_grad(keys.to(self.keys.device) if keys is not None else unknown)
        item_keys = all_gather_no_grad(item_keys.to(self.keys.device) if item_keys is not None else unknown)
        if image.shape[0] > self.size:  # a batch larger than the queue: keep its newest rows
            image, text, similarity, keys, item_keys = (x[-self.size:]
                                                        for x in (image, text, similarity, keys, item_keys))
        count = image.shape[0]
        positions = (int(self.pointer) + torch.arange(count, device=self.image.device)) % self.size
        self.image[positions] = image
        self.text[positions] = text
        self.similarity[positions] = similarity
        self.keys[positions] = keys
        self.item_keys[positions] = item_keys
        self.pointer.fill_((int(self.pointer) + count) % self.size)
        self.filled.fill_(min(self.size, int(self.filled) + count))
