"""The image path (tower + projection + L2 norm) through ONNX Runtime on CPU: about 3x PyTorch eager for
cots-lite on 2 cores (bench/cpu_throughput.py, bench/RESULTS.md).

The graph is exported once per model id with torch's exporter (needs ``onnx`` and ``onnxscript``) and cached
under ``<data dir>/models/onnx/<model id>/`` next to the built cots-lite, with a manifest holding the graph's
SHA-256. A graph is only ever read from that folder, only when its bytes match the manifest, and is checked
against PyTorch on a probe batch (cosine >= ``MIN_COSINE``) before use; anything else rebuilds it, and any
failure leaves the caller on PyTorch (``load_onnx_image_encoder`` returns None). Nothing is downloaded.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cots_core.heads import image_embedding
from cots_core.paths import data_dir

log = logging.getLogger(__name__)

GRAPH_FILE = "image.onnx"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
MIN_COSINE = 0.999  # per row, ONNX Runtime vs PyTorch on the probe batch
PROBE_BATCH = 2
# "auto" (ONNX Runtime on CPU when installed), "torch" (never), "onnx" (same as auto; logs why when it cannot)
RUNTIME_ENV = "COTS_IMAGE_RUNTIME"


def onnx_cache_root() -> Path:
    return data_dir() / "models" / "onnx"


def runtime_wanted() -> bool:
    """False when ``COTS_IMAGE_RUNTIME=torch`` or onnxruntime is not installed."""
    if os.environ.get(RUNTIME_ENV, "auto").strip().lower() == "torch":
        return False
    return importlib.util.find_spec("onnxruntime") is not None


class ImagePath(nn.Module):
    """pixels [B, 3, S, S] -> L2-normalised embeddings [B, D]: what ``COTS.encode_images`` computes."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.image_encoder = model.image_encoder
        self.image_projection = model.image_projection
        self.caption_memory = model.caption_memory

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return image_embedding(self.image_projection, self.caption_memory, self.image_encoder(pixels).global_feature)


class OnnxImageEncoder:
    """An ONNX Runtime session over the exported ``ImagePath``; ``encode_images`` as ``COTS.encode_images``."""

    def __init__(self, session, model_id: str, folder: Path):
        self.session, self.model_id, self.folder = session, model_id, folder
        self.input_name = session.get_inputs()[0].name

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(pixels.detach().cpu().float().numpy())
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


def _folder_for(model_id: str, root: Path) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", model_id)
    return root / safe


def _probe(model: nn.Module) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    size = int(model.config.image_size)
    return torch.rand(PROBE_BATCH, 3, size, size, generator=generator) * 2 - 1


def _session(graph: bytes, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle threads sleep instead of spinning: on a shared CPU spinning costs everyone (cf. OMP_WAIT_POLICY)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # from bytes: the graph cannot name external data files to be read from elsewhere
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def _matches_torch(encoder: OnnxImageEncoder, model: nn.Module) -> float:
    probe = _probe(model)
    with torch.inference_mode():
        expected = ImagePath(model).eval()(probe.to(next(model.parameters()).device)).float().cpu()
    got = encoder.encode_images(probe)
    return float(F.cosine_similarity(expected, got, dim=-1).min())


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's own loggers (hundreds of INFO lines under `cots -v`) held at WARNING meanwhile."""
    loggers = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export",
                                                    "torch._dynamo")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_image_graph(model: nn.Module, folder: Path) -> None:
    """Export ``ImagePath(model)`` to ``folder/image.onnx`` with its manifest (written last, atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = ImagePath(model).eval()
    probe = _probe(model).to(next(model.parameters()).device)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # the exporter prints its progress and warns about its own internals: nothing for the person to act on
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()), _quiet_exporter():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(path, (probe,), None, input_names=["pixels"], output_names=["embeddings"],
                                    dynamic_shapes={"pixels": {0: batch}}, dynamo=True, optimize=True,
                                    verbose=False)
        handle, staging = tempfile.mkstemp(prefix=".image-", suffix=".onnx", dir=folder)
        os.close(handle)
        try:
            program.save(staging, external_data=False)
            graph = Path(staging).read_bytes()
            os.replace(staging, folder / GRAPH_FILE)
        finally:
            Path(staging).unlink(missing_ok=True)
    manifest = {"format": FORMAT_VERSION, "model_id": model.model_id, "image_size": int(model.config.image_size),
                "embed_dim": int(model.config.embed_dim), "sha256": hashlib.sha256(graph).hexdigest(),
                "torch": torch.__version__}
    staging_manifest = folder / f".{MANIFEST_FILE}.tmp"
    staging_manifest.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(staging_manifest, folder / MANIFEST_FILE)


def _load_cached(model: nn.Module, folder: Path, threads: int) -> OnnxImageEncoder | None:
    """The cached graph when its manifest names this model and its bytes match; else None."""
    try:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        graph = (folder / GRAPH_FILE).read_bytes()
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION \
            or manifest.get("model_id") != model.model_id \
            or manifest.get("sha256") != hashlib.sha256(graph).hexdigest():
        return None
    return OnnxImageEncoder(_session(graph, threads), model.model_id, folder)


def load_onnx_image_encoder(model: nn.Module, threads: int | None = None, cache_root: Path | None = None,
                            on_export: Callable[[], None] | None = None) -> OnnxImageEncoder | None:
    """ONNX Runtime for ``model``'s image path: the cached graph, else exported now (once per model id,
    ~30 s for cots-lite on 2 cores; ``on_export`` is called first, so a caller can say why it waits). None (stay on PyTorch) when onnxruntime or the exporter is missing, the
    export fails, or the graph disagrees with PyTorch; the reason is logged."""
    if not runtime_wanted():
        return None
    threads = threads or torch.get_num_threads()
    folder = _folder_for(model.model_id, cache_root or onnx_cache_root())
    try:
        encoder = _load_cached(model, folder, threads)
        if encoder is None or _matches_torch(encoder, model) < MIN_COSINE:
            log.info("exporting the image tower of %s to ONNX (once per model)", model.model_id)
            if on_export is not None:
                on_export()
            export_image_graph(model, folder)
            encoder = _load_cached(model, folder, threads)
            cosine = _matches_torch(encoder, model) if encoder is not None else float("nan")
            if not cosine >= MIN_COSINE:
                log.warning("ONNX image graph of %s disagrees with PyTorch (cosine %.5f): using PyTorch",
                            model.model_id, cosine)
                return None
        return encoder
    except Exception as error:  # noqa: BLE001 - any exporter or runtime failure means: stay on PyTorch
        log.warning("ONNX Runtime unavailable for %s (%s: %s): using PyTorch", model.model_id,
                    type(error).__name__, str(error)[:200])
        return None
