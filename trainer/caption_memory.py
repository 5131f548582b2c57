"""A fine-tune's caption memory (``cots_core.heads.CaptionMemory``): built from the person's captioned
photos after training, kept only when it does not make the held-out photos harder to find.

The settings were chosen on the benchmark's validation split and reported on its test split
(bench/RESULTS.md, "Caption memory"); the held-out check guards a collection unlike the benchmark.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from cots_core.heads import CaptionMemory
from trainer.data.datasets import load_frames
from trainer.data.media import MediaError
from trainer.data.records import Record
from trainer.evaluate import evaluate_retrieval

TEMPERATURE = 0.05
NULL_SIMILARITY = 0.2  # cosine of centred pooled features below which a remembered photo says nothing
SCALE = 0.5
# Past this many captioned items the memory keeps a random sample: at 100k it costs 0.25x the image tower's time
# per photo embedded and 635 MB in the checkpoint (bench/caption_memory_cost.py); beyond it the exported image
# graph approaches ONNX's 2 GB limit. The items left out still trained the heads.
MAX_ENTRIES = 100_000


@torch.no_grad()
def memory_entries(model, records: list[Record], frames: int = 8, batch_size: int = 32
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(pooled image features [N, width], caption embeddings [N, D]) of the readable records: a video
    is the mean of its frames' features, a record with several captions the mean of their embeddings."""
    was_training = model.training
    model.eval()
    features, captions = [], []
    try:
        for start in range(0, len(records), batch_size):
            pixels, owner, texts = [], [], []
            for record in records[start:start + batch_size]:
                try:
                    images = load_frames(record, frames)
                except MediaError:
                    continue  # already counted by the training data's report
                pixels += [model.preprocess(image) for image in images]
                owner += [len(texts)] * len(images)
                texts.append(record.captions)
            if not texts:
                continue
            pooled = model.image_encoder(torch.stack(pixels).to(model.device)).global_feature.float().cpu()
            owner_t = torch.tensor(owner)
            sums = pooled.new_zeros(len(texts), pooled.shape[1]).index_add(0, owner_t, pooled)
            features.append(sums / torch.bincount(owner_t, minlength=len(texts)).unsqueeze(1))
            for record_captions in texts:
                captions.append(F.normalize(model.encode_texts(record_captions).float().cpu().mean(0), dim=-1))
    finally:
        model.train(was_training)
    if not features:
        return torch.zeros(0, model.image_encoder.width), torch.zeros(0, model.config.embed_dim)
    return torch.cat(features), torch.stack(captions)


def build_memory(model, records: list[Record], frames: int = 8) -> CaptionMemory:
    return memory_of(model, *memory_entries(model, records, frames))


def memory_of(model, features: torch.Tensor, captions: torch.Tensor) -> CaptionMemory:
    if not len(features):
        return CaptionMemory(model.image_encoder.width, model.config.embed_dim)
    if len(features) > MAX_ENTRIES:  # a seeded sample: the same data gives the same memory
        keep = torch.randperm(len(features), generator=torch.Generator().manual_seed(0))[:MAX_ENTRIES].sort().values
        features, captions = features[keep], captions[keep]
    return CaptionMemory.build(features, captions, TEMPERATURE, NULL_SIMILARITY, SCALE)


def attach_caption_memory(model, train: list[Record], held_out: list[Record], frames: int = 8,
                          log: Callable[[str], None] = print) -> dict:
    """Give ``model`` a memory of all its captioned records unless one built from ``train`` alone lowers the
    rsum of ``held_out`` by more than one held-out item can move it (600 / n: six recalls of 100 / n each;
    a smaller change is one item's luck on a few dozen); returns what was measured."""
    entries = memory_entries(model, train, frames)
    summary: dict = {"entries": 0}
    if held_out:
        summary["held_out_rsum_without"] = round(evaluate_retrieval(model, held_out, frames=frames)["rsum"], 2)
        model.set_caption_memory(memory_of(model, *entries))
        summary["held_out_rsum_with"] = round(evaluate_retrieval(model, held_out, frames=frames)["rsum"], 2)
        if summary["held_out_rsum_with"] < summary["held_out_rsum_without"] - 600 / len(held_out):
            model.set_caption_memory(CaptionMemory(model.image_encoder.width, model.config.embed_dim))
            log(f"caption memory left out: it lowered the held-out rsum ({summary['held_out_rsum_without']:.1f} "
                f"-> {summary['held_out_rsum_with']:.1f})")
            return summary
        held_out_entries = memory_entries(model, held_out, frames)
        entries = tuple(torch.cat([mine, theirs]) for mine, theirs in zip(entries, held_out_entries))
        summary["holds_held_out"] = True  # the held-out rsum above is the last honest one
    model.set_caption_memory(memory_of(model, *entries))
    summary["entries"] = model.caption_memory.size
    detail = (f" (held-out rsum {summary['held_out_rsum_without']:.1f} -> {summary['held_out_rsum_with']:.1f})"
              if held_out else "")
    if len(entries[0]) > summary["entries"]:
        detail += f"; a sample of the {len(entries[0])} readable ones (at most {MAX_ENTRIES} are kept)"
    log(f"caption memory: {summary['entries']} captioned items remembered{detail}")
    return summary
