"""Held-out retrieval evaluation: embed every item and caption, rank, score (trainer.metrics)."""
from __future__ import annotations

import torch

from trainer.data.datasets import load_frame
from trainer.data.media import MediaError
from trainer.data.records import LoadReport, Record
from trainer.data.webdataset import decode_record
from trainer.metrics import retrieval_metrics


def _frames(record: Record, frames: int):
    if record.payload is not None:
        return decode_record(record, frames)
    from trainer.data.media import read_video_frames

    return read_video_frames(record.path, frames)


@torch.no_grad()
def embed_records(model, records: list[Record], batch_size: int = 64, frames: int = 8,
                  report: LoadReport | None = None):
    """(item embeddings [N, D], caption embeddings [M, D], caption -> item index [M], caption texts [M]).

    Images go through the model's eval ``preprocess``; a video is the mean of its frames'
    embeddings (``model.encode_video``). Unreadable items are left out and counted in ``report``.
    """
    report = report or LoadReport()
    item_vectors: list[torch.Tensor] = []
    texts: list[str] = []
    owners: list[int] = []
    pending: list[torch.Tensor] = []
    pending_captions: list[list[str]] = []

    def flush():
        if pending:
            embedded = model.encode_images(torch.stack(pending)).float().cpu()
            for vector, captions in zip(embedded, pending_captions):
                add(vector, captions)
            pending.clear()
            pending_captions.clear()

    def add(vector, captions):
        owners.extend([len(item_vectors)] * len(captions))
        texts.extend(captions)
        item_vectors.append(vector)

    for record in records:
        try:
            if record.kind == "video":
                clip = torch.stack([model.preprocess(frame) for frame in _frames(record, frames)])
                flush()
                add(model.encode_video(clip).float().cpu(), record.captions)
                continue
            pending.append(model.preprocess(load_frame(record, frames)))
            pending_captions.append(record.captions)
        except MediaError as error:
            report.skip(error.reason, str(error).split(": ", 1)[-1])
            continue
        if len(pending) >= batch_size:
            flush()
    flush()
    if not item_vectors:
        raise ValueError("nothing to evaluate: no readable item in the validation set")
    caption_vectors = torch.cat([model.encode_texts(texts[i: i + batch_size]).float().cpu()
                                 for i in range(0, len(texts), batch_size)])
    return torch.stack(item_vectors), caption_vectors, torch.tensor(owners), texts


def evaluate_retrieval(model, records: list[Record], batch_size: int = 64, frames: int = 8,
                       report: LoadReport | None = None) -> dict[str, float]:
    """i2t/t2i R@1/5/10 (percent), rsum, median and mean rank (text->item), n_items, n_captions."""
    was_training = model.training
    model.eval()
    try:
        items, captions, owners, texts = embed_records(model, records, batch_size, frames, report)
    finally:
        model.train(was_training)
    metrics = retrieval_metrics(items @ captions.T, owners.numpy(), texts)
    metrics["n_items"] = int(items.shape[0])
    metrics["n_captions"] = int(captions.shape[0])
    return metrics
