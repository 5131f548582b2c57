"""Writing a model's text path as an ONNX graph with its tokenizer, checked against PyTorch (issue 33); the
reading side, which needs no torch, is ``cots_core.text_graph``.

Once per model id, into the model's ONNX cache folder: the tower (token ids and mask -> L2-normalised embedding)
exported with torch's exporter, the tokenizer as data that ``tokenizers`` or ``sentencepiece`` reads alone, and
a manifest with both files' SHA-256 and the verdict of the check: on the sample library's captions, the scene
vocabulary and texts chosen to break tokenizers (punctuation, case, emoji, undecodable bytes, written-out special
tokens, past the length limit), the token ids must be the model's own, every embedding within cosine
``MIN_COSINE`` of PyTorch's and every text's top-10 among the others the same. A graph that fails keeps only its
verdict, so queries stay on PyTorch and ``cots status`` says why.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cots_core.folder_safety import remove_damaged
from cots_core.image_runtime import quiet_exporter
from cots_core.onnx_cache import (
    file_stamp,
    model_folder,
    read_manifest,
    regular_file_sha256,
    session,
    write_file,
    write_manifest,
)
from cots_core.text_graph import (
    FORMAT_VERSION,
    GRAPH_FILE,
    MANIFEST_FILE,
    MAX_WEIGHTS_BYTES,
    MIN_COSINE,
    SIGLIP_SENTENCEPIECE,
    TOKENIZER_FILES,
    TOKENIZER_KINDS,
    TOKENIZERS_JSON,
    TOP_K,
    WEIGHTS_FILE,
    OnnxTextModel,
    file_sha256,
    text_graph_state,
)
from cots_core.text_query import TextQueryModel

log = logging.getLogger(__name__)

# texts that tell tokenizers apart: case, punctuation, spacing, scripts, emoji, a terminal's undecodable byte
# (a lone surrogate), special tokens written out, and one past every length limit
HARD_TEXTS = [
    "", "   ", "A PHOTO OF A CAT!!!", "dog, running; on the beach?", "café ☕ at night 🌃", "caf\udce9 au lait",
    "日本の桜と富士山", "tab\tand\nnewline  double  space", "\u2581piece\u2581marks", "</s> <pad> <unk> the end",
    "[CLS] [SEP] [PAD] [MASK]", "<|startoftext|> a dog <|endoftext|>", "Grace's 3 kids' 2nd birthday (2019)",
    " ".join(["a long caption about a sunny day at the beach with friends"] * 12),
]


def verification_texts() -> list[str]:
    """The sample library's captions, the scene vocabulary and ``HARD_TEXTS``: ~300 texts."""
    from cots_core.encoders import shipped_resource

    captions = [" ".join(line.split()) for path in sorted(shipped_resource("sample_library").rglob("*.txt"))
                for line in path.read_text(encoding="utf-8").splitlines()]
    scenes = [line.strip() for line in shipped_resource("vocabulary/scenes.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    return [text for text in captions if text] + scenes + HARD_TEXTS


class _FullTextPath(nn.Module):
    """token ids and mask -> L2-normalised embeddings, from a full COTS model."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.embed_text_features(input_ids, attention_mask)


def text_query_model_of(model: nn.Module) -> TextQueryModel:
    """The text half of a full COTS model, as the lean paths give it."""
    return TextQueryModel(model.config, model.model_id, _FullTextPath(model), model.tokenize, model.tokenizer)


# -- the tokenizer as data ----------------------------------------------------------------------------
def tokenizer_as_data(text_model: TextQueryModel) -> tuple[str, bytes, dict] | None:
    """(kind, file bytes, spec) of the model's tokenizer in a form ``cots_core.text_graph`` reads without
    transformers; None when there is none (the check then decides nothing: the graph is not written)."""
    from tokenizers import Tokenizer

    tokenizer, text_config = text_model.tokenizer, text_model.config.text
    if isinstance(tokenizer, Tokenizer):  # the lean paths: truncation and padding already set on it
        return TOKENIZERS_JSON, tokenizer.to_str().encode("utf-8"), {}
    max_length = int(text_config.max_length)
    pad_to_max = text_config.padding == "max_length"
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # a transformers tokenizer over `tokenizers`: its backend, set up as tokenize_texts
        fast = Tokenizer.from_str(backend.to_str())
        fast.enable_truncation(max_length)
        pad = {"pad_id": int(tokenizer.pad_token_id or 0), "pad_token": str(tokenizer.pad_token or "[PAD]")}
        fast.enable_padding(length=max_length if pad_to_max else None, **pad)
        return TOKENIZERS_JSON, fast.to_str().encode("utf-8"), {}
    sp_model = getattr(tokenizer, "sp_model", None)
    if sp_model is not None and type(tokenizer).__name__ == "SiglipTokenizer":
        specials = {str(token): int(tokenizer.convert_tokens_to_ids(token)) for token in tokenizer.all_special_tokens}
        spec = {"max_length": max_length, "eos_id": int(tokenizer.eos_token_id), "pad_id": int(tokenizer.pad_token_id),
                "unk_piece": str(tokenizer.unk_token), "lower": bool(getattr(tokenizer, "do_lower_case", True)),
                "padding": "max_length" if pad_to_max else "longest", "specials": specials}
        return SIGLIP_SENTENCEPIECE, sp_model.serialized_model_proto(), spec
    return None


# -- export and check ---------------------------------------------------------------------------------
def _export(tower: nn.Module, tokens: dict[str, torch.Tensor], staging: Path) -> None:
    """The tower as ``staging/GRAPH_FILE`` with its weights in ``staging/WEIGHTS_FILE`` (ONNX external data)."""
    import onnx

    batch = torch.export.Dim("batch", min=1, max=4096)
    length = torch.export.Dim("length", min=1, max=4096)
    inputs = (tokens["input_ids"], tokens["attention_mask"])
    with torch.no_grad(), quiet_exporter():
        program = torch.onnx.export(tower.eval(), inputs, None, input_names=["input_ids", "attention_mask"],
                                    output_names=["embeddings"], dynamo=True, optimize=True, verbose=False,
                                    dynamic_shapes={"input_ids": {0: batch, 1: length},
                                                    "attention_mask": {0: batch, 1: length}})
        whole = staging / "whole.onnx"
        program.save(str(whole), external_data=False)
    graph = onnx.load(str(whole))
    whole.unlink()
    onnx.save_model(graph, str(staging / GRAPH_FILE), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=WEIGHTS_FILE, size_threshold=1024)


def _verdict(text_model: TextQueryModel, graph: OnnxTextModel, texts: list[str]) -> dict:
    """Token ids, cosine and top-k of the graph against PyTorch on ``texts``."""
    expected_tokens = text_model.tokenize(texts)
    got_tokens = graph.tokenize(texts)
    expected_ids, expected_mask = (expected_tokens[k].numpy() for k in ("input_ids", "attention_mask"))
    same_shape = expected_ids.shape == got_tokens["input_ids"].shape
    differing = int(len(texts) if not same_shape else
                    ((expected_ids != got_tokens["input_ids"]) | (expected_mask != got_tokens["attention_mask"]))
                    .any(axis=1).sum())
    with torch.inference_mode():
        expected = text_model.encode_texts(texts).float().numpy()
    expected /= np.maximum(np.linalg.norm(expected, axis=1, keepdims=True), 1e-12)
    got = graph.encode_texts(texts)
    cosines = (expected * got).sum(axis=1)
    k = min(TOP_K, len(texts) - 1)
    top_expected = np.argsort(-(expected @ expected.T), axis=1)[:, :k]
    top_got = np.argsort(-(got @ expected.T), axis=1)[:, :k]
    top_differing = sum(set(a) != set(b) for a, b in zip(top_expected, top_got))
    verdict = {"texts": len(texts), "token_ids_differing": differing, "min_cosine": round(float(cosines.min()), 6),
               "same_top_k": top_differing == 0, "top_k_differing": int(top_differing), "k": int(k)}
    failures = ([f"token ids differ on {differing} of {len(texts)} texts"] if differing else []) + \
               ([f"min cosine {cosines.min():.5f} < {MIN_COSINE}"] if not cosines.min() >= MIN_COSINE else []) + \
               ([f"top-{k} differs on {top_differing} texts"] if top_differing else [])
    verdict["accepted"] = not failures
    if failures:
        verdict["why"] = "; ".join(failures)
    return verdict


def export_text_graph(text_model: TextQueryModel, root: Path | None = None, image_size: int | None = None) -> dict:
    """Write and check the text graph of ``text_model`` into its cache folder; returns the manifest (its
    ``verdict`` says whether queries may use it). Raises what the exporter raises; the caller stays on PyTorch."""
    folder = model_folder(text_model.model_id, root)
    folder.mkdir(parents=True, exist_ok=True)
    for name in (GRAPH_FILE, WEIGHTS_FILE, MANIFEST_FILE, *TOKENIZER_FILES.values()):  # a FIFO or link: made anew
        remove_damaged(folder / name)
    manifest = {"format": FORMAT_VERSION, "model_id": text_model.model_id, "embed_dim": int(text_model.config.embed_dim),
                "image_size": int(image_size or text_model.config.image_size), "torch": torch.__version__}
    as_data = tokenizer_as_data(text_model)
    if as_data is None:
        manifest["verdict"] = {"accepted": False, "why": f"its tokenizer ({type(text_model.tokenizer).__name__}) "
                                                         "needs transformers"}
        write_manifest(folder, MANIFEST_FILE, manifest)
        return manifest
    kind, tokenizer_data, spec = as_data
    texts = verification_texts()
    with tempfile.TemporaryDirectory(prefix=".text-", dir=folder) as staging_name:
        staging = Path(staging_name)
        _export(text_model.tower, text_model.tokenize(texts[:3]), staging)
        checked = OnnxTextModel(text_model.model_id, manifest, session(staging / GRAPH_FILE, torch.get_num_threads()),
                                TOKENIZER_KINDS[kind](tokenizer_data, spec), folder)
        manifest["verdict"] = _verdict(text_model, checked, texts)
        del checked  # the session maps the staged weights: closed before they move
        manifest["tokenizer"] = {"kind": kind, "sha256": file_sha256(tokenizer_data), **spec}
        if manifest["verdict"]["accepted"]:  # the files checked are the files kept: moved, not written again
            manifest["sha256"] = file_sha256((staging / GRAPH_FILE).read_bytes())
            manifest["weights"] = {"sha256": regular_file_sha256(staging / WEIGHTS_FILE, MAX_WEIGHTS_BYTES)}
            write_file(folder / TOKENIZER_FILES[kind], tokenizer_data)
            os.replace(staging / WEIGHTS_FILE, folder / WEIGHTS_FILE)
            os.replace(staging / GRAPH_FILE, folder / GRAPH_FILE)
            manifest["weights"]["stamp"] = file_stamp(folder / WEIGHTS_FILE)
    write_manifest(folder, MANIFEST_FILE, manifest)  # last: the files it names are in place
    return manifest


def settled_manifest(model_id: str, root: Path | None = None) -> dict | None:
    """The manifest of ``model_id``'s text graph when nothing is left to write: checked and intact (its weights
    stamped again when they were hashed just now, so that later loads need not hash them), or failed its check
    with this torch (not tried again). None: the graph is to be written."""
    folder = model_folder(model_id, root)
    state = text_graph_state(model_id, root, load=False)
    if state.usable:
        weights, stamp = state.manifest["weights"], file_stamp(folder / WEIGHTS_FILE)
        if weights.get("stamp") != stamp:
            weights["stamp"] = stamp
            write_manifest(folder, MANIFEST_FILE, state.manifest)
        return state.manifest
    manifest = read_manifest(folder, MANIFEST_FILE)
    if (manifest and manifest.get("format") == FORMAT_VERSION and manifest.get("model_id") == model_id
            and manifest.get("torch") == torch.__version__ and not (manifest.get("verdict") or {}).get("accepted")):
        return manifest
    return None


def ensure_text_graph(text_model: TextQueryModel, root: Path | None = None, image_size: int | None = None) -> dict:
    """The manifest of ``text_model``'s checked text graph: the settled one (``settled_manifest``), else
    written now (once per model id)."""
    return settled_manifest(text_model.model_id, root) or export_text_graph(text_model, root, image_size)
