"""The image path (tower + projection + L2 norm) through ONNX Runtime on CPU: about 3x PyTorch eager for
cots-lite on 2 cores (bench/cpu_throughput.py, bench/RESULTS.md).

The graph is exported once per model id with torch's exporter (needs ``onnx`` and ``onnxscript``) and cached
under ``<data dir>/models/onnx/<model id>/`` next to the built cots-lite, with a manifest holding the graph's
SHA-256. A graph is only ever read from that folder, only when its bytes match the manifest, and is checked
against PyTorch on a probe batch (cosine >= ``MIN_COSINE``) before use; anything else rebuilds it, and any
failure leaves the caller on PyTorch (``load_onnx_image_encoder`` returns None). Nothing is downloaded.

The folder's files are trusted for nothing (issue 30): they are read only as regular files of a bounded size
(``read_regular_file``: no symlink, no FIFO), a graph that ONNX Runtime cannot load is re-exported like one
whose hash differs, and the int8 graph is checked against fp32 on photos at every load, since a hash in a
manifest beside it proves nothing.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cots_core.folder_safety import read_regular_file, remove_damaged
from cots_core.heads import image_embedding
from cots_core.image_graph import GRAPH_FILE, MANIFEST_FILE, MAX_PIXEL_ERROR, preprocess_spec
from cots_core.image_graph import preprocess as light_preprocess
from cots_core.onnx_cache import MAX_GRAPH_BYTES, model_folder, read_manifest, session, write_manifest

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MIN_COSINE = 0.999  # per row, ONNX Runtime vs PyTorch on the probe batch
PROBE_BATCH = 2
# "auto" (ONNX Runtime on CPU when installed; int8 where it agrees), "torch" (never), "onnx" (same as auto;
# logs why when it cannot), "fp32" (ONNX Runtime, never int8)
RUNTIME_ENV = "COTS_IMAGE_RUNTIME"
INT8_GRAPH_FILE = "image.int8.onnx"
# int8 (dynamic quantisation of a transformer tower's matrix products) is a candidate only where the search it
# gives agrees with fp32 on real photos and it pays (issue 20; measured in bench/clip_family_speed.py)
INT8_MIN_OVERLAP = 0.95  # mean overlap of each photo's 10 nearest photos, int8 vs fp32
INT8_MIN_COSINE = 0.99  # per photo, int8 vs fp32
INT8_MIN_SPEEDUP = 1.2
INT8_CHECK_VIEWS = 8  # photo views an accepted int8 graph is checked on against fp32 at each load


def runtime_wanted() -> bool:
    """False when ``COTS_IMAGE_RUNTIME=torch`` or onnxruntime is not installed."""
    if os.environ.get(RUNTIME_ENV, "auto").strip().lower() == "torch":
        return False
    return importlib.util.find_spec("onnxruntime") is not None


def int8_wanted() -> bool:
    return os.environ.get(RUNTIME_ENV, "auto").strip().lower() != "fp32"


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

    def __init__(self, session, model_id: str, folder: Path, precision: str = "fp32", manifest: dict | None = None):
        self.session, self.model_id, self.folder, self.precision = session, model_id, folder, precision
        self.manifest = manifest or {}  # the manifest the graph was checked against
        self.input_name = session.get_inputs()[0].name

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(pixels.detach().cpu().float().numpy())
        return torch.from_numpy(self.session.run(None, {self.input_name: array})[0])


def _probe(model: nn.Module) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    size = int(model.config.image_size)
    return torch.rand(PROBE_BATCH, 3, size, size, generator=generator) * 2 - 1


def _matches_torch(encoder: OnnxImageEncoder, model: nn.Module) -> float:
    probe = _probe(model)
    with torch.inference_mode():
        expected = ImagePath(model).eval()(probe.to(next(model.parameters()).device)).float().cpu()
    got = encoder.encode_images(probe)
    return float(F.cosine_similarity(expected, got, dim=-1).min())


@contextlib.contextmanager
def quiet_exporter():
    """The exporter prints its progress and warns about its own internals, nothing for the person to act on:
    its loggers (hundreds of INFO lines under `cots -v`) held at WARNING, its warnings ignored and its prints
    swallowed meanwhile. Also for the text graph (``cots_core.text_graph_export``) and the quantiser."""
    loggers = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript", "torch.onnx", "torch.export",
                                                    "torch._dynamo")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextlib.contextmanager
def _quiet_root_logger():
    """The quantiser logs advice through the root logger, whose first use would install a stderr handler
    for the rest of the process: give it a silent one meanwhile."""
    root = logging.getLogger()
    silent, level = logging.NullHandler(), root.level
    root.addHandler(silent)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.removeHandler(silent)
        root.setLevel(level)


def export_image_graph(model: nn.Module, folder: Path) -> None:
    """Export ``ImagePath(model)`` to ``folder/image.onnx`` with its manifest (written last, atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = ImagePath(model).eval()
    probe = _probe(model).to(next(model.parameters()).device)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad(), quiet_exporter():
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
    remove_damaged(folder / INT8_GRAPH_FILE)  # quantised from the graph just replaced: measured again
    manifest = {"format": FORMAT_VERSION, "model_id": model.model_id, "image_size": int(model.config.image_size),
                "embed_dim": int(model.config.embed_dim), "sha256": hashlib.sha256(graph).hexdigest(),
                "torch": torch.__version__}
    write_manifest(folder, MANIFEST_FILE, manifest)


def _load_cached(model: nn.Module, folder: Path, threads: int) -> OnnxImageEncoder | None:
    """The cached graph when its manifest names this model, its bytes match and ONNX Runtime loads it; else
    None (the caller exports it again)."""
    manifest = read_manifest(folder, MANIFEST_FILE)
    if manifest is None or manifest.get("format") != FORMAT_VERSION or manifest.get("model_id") != model.model_id:
        return None
    try:
        graph = read_regular_file(folder / GRAPH_FILE, MAX_GRAPH_BYTES)
    except OSError:
        return None
    if manifest.get("sha256") != hashlib.sha256(graph).hexdigest():
        return None
    try:
        opened = session(graph, threads)
    except ImportError:
        raise
    except Exception as error:  # noqa: BLE001 - cut short with its hash rewritten, or otherwise damaged
        log.info("the cached ONNX graph of %s does not load (%s): exporting it again", model.model_id,
                 str(error)[:200])
        return None
    return OnnxImageEncoder(opened, model.model_id, folder, manifest=manifest)


def load_onnx_image_encoder(model: nn.Module, threads: int | None = None, cache_root: Path | None = None,
                            on_export: Callable[[], None] | None = None) -> OnnxImageEncoder | None:
    """ONNX Runtime for ``model``'s image path: the cached graph, else exported now (once per model id,
    ~30 s for cots-lite on 2 cores; ``on_export`` is called first, so a caller can say why it waits). None (stay on PyTorch) when onnxruntime or the exporter is missing, the
    export fails, or the graph disagrees with PyTorch; the reason is logged."""
    if not runtime_wanted():
        return None
    threads = threads or torch.get_num_threads()
    folder = model_folder(model.model_id, cache_root)
    try:
        encoder = _load_cached(model, folder, threads)
        cosine = _matches_torch(encoder, model) if encoder is not None else float("nan")
        if not cosine >= MIN_COSINE:
            for name in (GRAPH_FILE, MANIFEST_FILE):  # whatever stands there (a FIFO, a link) is made anew
                remove_damaged(folder / name)
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
        _record_light_check(model, encoder, cosine)
        if model.config.vision.backend == "transformers":
            return _fastest_for_transformer_tower(model, encoder, threads)
        return encoder
    except Exception as error:  # noqa: BLE001 - any exporter or runtime failure means: stay on PyTorch
        log.warning("ONNX Runtime unavailable for %s (%s: %s): using PyTorch", model.model_id,
                    type(error).__name__, str(error)[:200])
        return None


def _record_light_check(model: nn.Module, encoder: OnnxImageEncoder, cosine: float) -> None:
    """Keep in the manifest what a query image needs to go through this graph without torch
    (``cots_core.image_graph``): the graph's cosine against PyTorch, just measured, and the numpy
    preprocessing's largest pixel error against the model's transform on the sample library's photos. Once per
    graph (keyed by its hash)."""
    manifest = encoder.manifest
    light = manifest.get("light")
    if isinstance(light, dict) and light.get("sha256") == manifest.get("sha256"):
        return
    spec = preprocess_spec(model.config.vision, model.config.image_size)
    verdict: dict = {"sha256": manifest.get("sha256"), "min_cosine": round(cosine, 6)}
    if spec is None:
        verdict.update(accepted=False, why=f"the {model.config.vision.resize_backend} resize is torch's alone")
    else:
        error = max(float(np.abs(light_preprocess(image, spec) - model.preprocess(image).numpy()).max())
                    for image in _sample_photos())
        verdict.update(preprocess=spec, max_pixel_error=error, accepted=error <= MAX_PIXEL_ERROR)
    manifest["light"] = verdict
    write_manifest(encoder.folder, MANIFEST_FILE, manifest)


def _sample_photos(limit: int = 6) -> list:
    """The shipped sample library's first photos, each whole and as an odd-sized crop (rounding differs)."""
    from PIL import Image

    from cots_core.encoders import shipped_resource

    photos = []
    for path in sorted(shipped_resource("sample_library").rglob("*.jpg"))[:limit]:
        with Image.open(path) as opened:
            opened.load()
            image = opened.convert("RGB")
        photos += [image, image.crop((1, 3, image.width * 2 // 3 + 1, image.height - 2))]
    return photos


def exported_graph_encoder(model: nn.Module, threads: int | None = None,
                           cache_root: Path | None = None) -> OnnxImageEncoder | None:
    """The fp32 graph of ``model`` already exported into the cache, whatever runtime was chosen for it
    (for benchmarks); None when there is none."""
    folder = model_folder(model.model_id, cache_root)
    return _load_cached(model, folder, threads or torch.get_num_threads())


# -- int8 ---------------------------------------------------------------------------------------------
def top_k_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean overlap of each row's ``k`` nearest other rows under embeddings ``a`` and under ``b`` (rows
    L2-normalised): how far the ``similar`` ranking agrees."""
    k = min(k, len(a) - 1)
    overlaps = []
    for i, (row_a, row_b) in enumerate(zip(a @ a.T, b @ b.T)):
        row_a[i] = row_b[i] = -np.inf
        overlaps.append(len(set(np.argsort(-row_a)[:k]) & set(np.argsort(-row_b)[:k])) / k)
    return float(np.mean(overlaps))


def agreement_views(model: nn.Module, limit: int | None = None) -> torch.Tensor:
    """Real photos to check a quantised graph on: the shipped sample library's photos, each whole and as
    three crops (40 views, so that each has ten neighbours to rank), preprocessed for ``model``; the first
    ``limit`` views only when given."""
    from PIL import Image

    from cots_core.encoders import shipped_resource
    from cots_core.images import to_rgb

    views = []
    for path in sorted(shipped_resource("sample_library").rglob("*.jpg")):
        if limit is not None and len(views) >= limit:
            break
        with Image.open(path) as opened:
            opened.load()
            image = to_rgb(opened)
        width, height = image.size
        for box in ((0, 0, width, height), (0, 0, width * 2 // 3, height * 2 // 3),
                    (width // 3, height // 3, width, height), (width // 6, 0, width * 5 // 6, height)):
            views.append(model.preprocess(image.crop(box)))
    return torch.stack(views[:limit])


def _timed(encode: Callable[[torch.Tensor], torch.Tensor], pixels: torch.Tensor) -> tuple[np.ndarray, float]:
    encode(pixels[:2])  # warm-up
    started = time.perf_counter()
    out = encode(pixels).numpy()
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12), time.perf_counter() - started


def _decide(model: nn.Module, fp32: OnnxImageEncoder, threads: int) -> dict:
    """Quantise, check int8 against fp32 on real photos, and time PyTorch, fp32 and int8 on the same views."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_path = fp32.folder / INT8_GRAPH_FILE
    remove_damaged(int8_path)  # written anew, never through what stands there (a FIFO would block the write)
    with quiet_exporter(), _quiet_root_logger():
        quantize_dynamic(str(fp32.folder / GRAPH_FILE), str(int8_path), weight_type=QuantType.QInt8)
    graph = read_regular_file(int8_path, MAX_GRAPH_BYTES)
    int8 = OnnxImageEncoder(session(graph, threads), model.model_id, fp32.folder)
    pixels = agreement_views(model)
    path = ImagePath(model).eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        _, torch_seconds = _timed(lambda x: path(x.to(device)).float().cpu(), pixels)
    exact, fp32_seconds = _timed(fp32.encode_images, pixels)
    quantised, int8_seconds = _timed(int8.encode_images, pixels)
    int8_verdict = {"overlap": round(top_k_overlap(exact, quantised), 4),
                    "min_cosine": round(float((exact * quantised).sum(1).min()), 5),
                    "speedup": round(fp32_seconds / max(int8_seconds, 1e-9), 2), "views": int(len(pixels)),
                    "sha256": hashlib.sha256(graph).hexdigest()}
    int8_verdict["accepted"] = bool(int8_verdict["overlap"] >= INT8_MIN_OVERLAP
                                    and int8_verdict["min_cosine"] >= INT8_MIN_COSINE
                                    and int8_verdict["speedup"] >= INT8_MIN_SPEEDUP)
    if not int8_verdict["accepted"]:
        int8_path.unlink(missing_ok=True)
    seconds = {"torch": round(torch_seconds, 4), "fp32": round(fp32_seconds, 4), "int8": round(int8_seconds, 4)}
    return {"int8": int8_verdict, "seconds": seconds}


def _has_verdict(manifest: dict) -> bool:
    verdict, seconds = manifest.get("int8"), manifest.get("seconds")
    return isinstance(verdict, dict) and isinstance(seconds, dict) and all(
        isinstance(seconds.get(name), (int, float)) for name in ("torch", "fp32", "int8"))


def _checked_int8(model: nn.Module, fp32: OnnxImageEncoder, threads: int) -> OnnxImageEncoder | None:
    """The int8 graph of the verdict, or None when the file is not the graph that was measured or no longer
    agrees with fp32. The hash in the manifest is compared with the file's own, but the manifest is a file
    like the graph (a forged graph with its hash written in would pass), so the graph's output is checked
    against fp32 on real photo views at every load, as fp32's is against PyTorch."""
    try:
        graph = read_regular_file(fp32.folder / INT8_GRAPH_FILE, MAX_GRAPH_BYTES)
        if hashlib.sha256(graph).hexdigest() != fp32.manifest["int8"].get("sha256"):
            return None
        int8 = OnnxImageEncoder(session(graph, threads), model.model_id, fp32.folder, "int8", fp32.manifest)
        pixels = agreement_views(model, INT8_CHECK_VIEWS)
        cosine = F.cosine_similarity(fp32.encode_images(pixels), int8.encode_images(pixels), dim=-1).min()
    except ImportError:
        raise
    except Exception:  # noqa: BLE001 - unreadable, not a graph, or a graph of another shape: not this one
        return None
    return int8 if float(cosine) >= INT8_MIN_COSINE else None


def _fastest_for_transformer_tower(model: nn.Module, fp32: OnnxImageEncoder, threads: int) -> OnnxImageEncoder | None:
    """The fastest of PyTorch, ONNX Runtime fp32 and int8 (int8 only where its search agrees with fp32) for
    a transformer tower, measured once per model on the sample library's views; None means PyTorch. Unlike
    cots-lite's convolutions (ONNX Runtime ~4x PyTorch), a ViT's matrix products gain little in fp32. An
    int8 graph that is not the one measured (``_checked_int8``) is deleted and the choice made again."""
    manifest = fp32.manifest
    for _ in range(2):
        if not _has_verdict(manifest):
            manifest.update(_decide(model, fp32, threads))
            log.info("image runtime of %s: int8 %s, seconds per view batch %s", model.model_id, manifest["int8"],
                     manifest["seconds"])
            write_manifest(fp32.folder, MANIFEST_FILE, manifest)
        allowed = ["torch", "fp32"] + (["int8"] if manifest["int8"].get("accepted") and int8_wanted() else [])
        chosen = min(allowed, key=lambda name: float(manifest["seconds"][name]))
        if chosen == "torch":
            log.info("PyTorch is the fastest image runtime for %s here", model.model_id)
            return None
        if chosen == "fp32":
            return fp32
        int8 = _checked_int8(model, fp32, threads)
        if int8 is not None:
            return int8
        log.warning("the int8 image graph of %s is not the one that was measured: measuring again",
                    model.model_id)
        remove_damaged(fp32.folder / INT8_GRAPH_FILE)
        manifest.pop("int8", None)
        manifest.pop("seconds", None)
    return fp32
