"""Text queries through ONNX Runtime, without torch, timm or transformers (issue 33).

A cold ``cots search`` used to spend most of its time importing PyTorch (about 1.8-3 s on 2 cores), for a text
tower whose forward pass is ~10 ms. Here a query needs only ``tokenizers`` (or ``sentencepiece`` for SigLIP),
ONNX Runtime and numpy. The graph and the tokenizer are written once per model id by
``cots_core.text_graph_export`` (which needs torch) into the model's ONNX cache folder
(``cots_core.onnx_cache``), and checked there against PyTorch: the same token ids, cosine >= ``MIN_COSINE`` and
the same top-10 on the sample library's captions and the scene vocabulary. The verdict is kept in the manifest;
only an accepted one is loaded, and only when the files' bytes are the ones checked. Anything else leaves the
caller on the PyTorch path (``text_graph_state`` says why, for ``cots status``).

The cache folder is the person's own data folder, written by cots; its files are still read as data only:
bounded regular files, the graph from bytes (no external data), the tokenizer as JSON or a SentencePiece
model. Nothing there is executed.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cots_core.folder_safety import read_regular_file
from cots_core.onnx_cache import (
    MAX_GRAPH_BYTES,
    file_stamp,
    model_folder,
    read_manifest,
    regular_file_sha256,
    session,
)

log = logging.getLogger(__name__)

GRAPH_FILE = "text.onnx"
# the weights beside the graph, as ONNX external data: ONNX Runtime maps them rather than parsing them out of
# the protobuf, which halves a session's start for CLIP's 240 MB text tower (bench/RESULTS.md, issue 33)
WEIGHTS_FILE = "text.weights"
MANIFEST_FILE = "text.json"
FORMAT_VERSION = 2  # 2: weights in WEIGHTS_FILE
MIN_COSINE = 0.9999  # per text, ONNX Runtime vs PyTorch
TOP_K = 10
NOT_CHECKED = "its text graph is not the one that was checked (`cots index` writes it again)"
MAX_TOKENIZER_BYTES = 64 << 20
MAX_WEIGHTS_BYTES = 16 << 30  # a tokenizer.json of a 250k-piece vocabulary is ~20 MB
# the kinds of tokenizer a graph folder can hold, and their file names
TOKENIZERS_JSON, SIGLIP_SENTENCEPIECE = "tokenizers", "sentencepiece-siglip"
TOKENIZER_FILES = {TOKENIZERS_JSON: "text-tokenizer.json", SIGLIP_SENTENCEPIECE: "text-spiece.model"}
# "auto" (the checked graph where there is one; written by indexing), "torch" (never written, never used)
RUNTIME_ENV = "COTS_TEXT_RUNTIME"


def runtime_wanted() -> bool:
    return os.environ.get(RUNTIME_ENV, "auto").strip().lower() != "torch"


def tokenizable(text: str) -> str:
    """``text`` as valid Unicode for a tokenizer. A query typed in a terminal whose bytes are not UTF-8 reaches
    Python with lone surrogates (``caf\\udce9``), which the tokenizers raise TypeError on (issue 21): the
    undecodable bytes are read as Latin-1 (``café``), any other lone surrogate becomes U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    return "".join(chr(ord(char) - 0xDC00) if 0xDC80 <= ord(char) <= 0xDCFF
                   else "\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)


# -- tokenizers without transformers ----------------------------------------------------------------------
class JsonTokenizer:
    """A ``tokenizers`` tokenizer whose JSON holds its truncation and padding: ids and mask as the model's own
    tokenizer gives them."""

    def __init__(self, data: bytes, spec: dict):
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(data.decode("utf-8"))

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self.tokenizer.encode_batch([tokenizable(text) for text in texts])
        return (np.array([e.ids for e in encodings], dtype=np.int64),
                np.array([e.attention_mask for e in encodings], dtype=np.int64))


class SiglipSentencePiece:
    """transformers' ``SiglipTokenizer`` over ``sentencepiece`` alone: lower-cased, punctuation removed, spaces
    collapsed, encoded after the unknown piece (whose pieces are then dropped: the model has no dummy prefix),
    the end piece appended, truncated and padded to ``max_length``. Checked id for id against transformers when
    the graph is written (``text_graph_export``)."""

    def __init__(self, data: bytes, spec: dict):
        import sentencepiece

        self.processor = sentencepiece.SentencePieceProcessor(model_proto=data)
        self.max_length, self.eos_id, self.pad_id = int(spec["max_length"]), int(spec["eos_id"]), int(spec["pad_id"])
        self.unk_piece, self.lower = str(spec["unk_piece"]), bool(spec["lower"])
        self.pad_to_max = spec.get("padding") == "max_length"
        self.specials = {str(piece): int(piece_id) for piece, piece_id in dict(spec["specials"]).items()}
        self.unk_length = len(self.processor.encode(self.unk_piece))
        self._punctuation = str.maketrans("", "", string.punctuation)
        pattern = "|".join(re.escape(piece) for piece in sorted(self.specials, key=len, reverse=True))
        self._special_split = re.compile(f"\\s*({pattern})\\s*") if pattern else None

    def _piece_ids(self, text: str) -> list[int]:
        if self.lower:
            text = text.lower()
        text = re.sub(r"\s+", " ", text.translate(self._punctuation)).strip()
        ids = self.processor.encode(self.unk_piece + text)
        return ids[self.unk_length:] if len(ids) >= self.unk_length else ids

    def ids(self, text: str) -> list[int]:
        text = "\u2581" + tokenizable(text).replace("\u2581", " ")
        parts = self._special_split.split(text) if self._special_split else [text]
        ids: list[int] = []
        for index, part in enumerate(parts):
            if index % 2:  # a special piece written out in the text: its own id, as transformers splits it
                ids.append(self.specials[part])
            elif part:
                pieces = self._piece_ids(part)
                # transformers drops a lone leading "▁" before a special piece
                if index == 0 and len(parts) > 1 and pieces == [self.processor.piece_to_id("\u2581")]:
                    pieces = []
                ids.extend(pieces)
        ids = ids[:self.max_length - 1]
        return ids if ids and ids[-1] == self.eos_id else ids + [self.eos_id]

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        rows = [self.ids(text) for text in texts]
        width = self.max_length if self.pad_to_max else max(len(row) for row in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, :len(row)], mask[i, :len(row)] = row, 1
        return ids, mask


TOKENIZER_KINDS = {TOKENIZERS_JSON: JsonTokenizer, SIGLIP_SENTENCEPIECE: SiglipSentencePiece}


# -- the model ----------------------------------------------------------------------------------------
class OnnxTextModel:
    """A model's text path through ONNX Runtime: ``encode_texts(texts)`` gives L2-normalised float32
    embeddings [B, D] as ``COTS.encode_texts`` does, with numpy alone."""

    def __init__(self, model_id: str, manifest: dict, graph_session, tokenizer, folder: Path):
        self.model_id, self.manifest, self.session, self.tokenizer, self.folder = (
            model_id, manifest, graph_session, tokenizer, folder)
        self.embed_dim = int(manifest["embed_dim"])
        self.image_size = int(manifest.get("image_size") or 224)
        self._inputs = {i.name for i in graph_session.get_inputs()}  # the exporter drops an input the tower ignores

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        ids, mask = self.tokenizer(texts)
        return {"input_ids": ids, "attention_mask": mask}

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.embed_dim), np.float32)
        feed = {name: value for name, value in self.tokenize(texts).items() if name in self._inputs}
        out = np.asarray(self.session.run(None, feed)[0], dtype=np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class TextGraphState:
    """Whether text queries of a model can go through its ONNX text graph: ``usable`` (then ``manifest`` is the
    checked one, and ``model`` the loaded graph unless it was not asked for), else ``reason``, one line for
    ``cots status``."""

    model: OnnxTextModel | None
    reason: str
    manifest: dict | None = None

    @property
    def usable(self) -> bool:
        return not self.reason


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def text_graph_state(model_id: str, root: Path | None = None, threads: int | None = None,
                     load: bool = True) -> TextGraphState:
    """The checked text graph of ``model_id`` in its cache folder, loaded when ``load``; or why there is none."""
    folder = model_folder(model_id, root)
    manifest = read_manifest(folder, MANIFEST_FILE)
    if manifest is None or manifest.get("format") != FORMAT_VERSION or manifest.get("model_id") != model_id:
        return TextGraphState(None, "no text graph yet (`cots index` writes it, once per model)")
    verdict = manifest.get("verdict") if isinstance(manifest.get("verdict"), dict) else {}
    if not verdict.get("accepted"):
        return TextGraphState(None, f"its text graph did not match PyTorch ({verdict.get('why', 'unchecked')})")
    tokenizer_spec = manifest.get("tokenizer") if isinstance(manifest.get("tokenizer"), dict) else {}
    kind = tokenizer_spec.get("kind")
    if kind not in TOKENIZER_KINDS:
        return TextGraphState(None, f"its text graph names an unknown tokenizer ({str(kind)[:40]})")
    weights = manifest.get("weights") if isinstance(manifest.get("weights"), dict) else {}
    try:
        graph = read_regular_file(folder / GRAPH_FILE, MAX_GRAPH_BYTES)  # the structure alone: small
        tokenizer_data = read_regular_file(folder / TOKENIZER_FILES[kind], MAX_TOKENIZER_BYTES)
        # the weights (~90 MB for cots-lite) are hashed only when their stamp is not the one recorded when they
        # were written: reading and hashing them would be a tenth of a cold search
        stamped = weights.get("stamp") and file_stamp(folder / WEIGHTS_FILE) == weights.get("stamp")
        if not stamped and regular_file_sha256(folder / WEIGHTS_FILE, MAX_WEIGHTS_BYTES) != weights.get("sha256"):
            return TextGraphState(None, NOT_CHECKED)
    except OSError as error:
        return TextGraphState(None, f"its text graph cannot be read ({type(error).__name__})")
    if file_sha256(graph) != manifest.get("sha256") or file_sha256(tokenizer_data) != tokenizer_spec.get("sha256"):
        return TextGraphState(None, NOT_CHECKED)
    if not load:
        return TextGraphState(None, "", manifest)
    try:
        tokenizer = TOKENIZER_KINDS[kind](tokenizer_data, tokenizer_spec)
        # from the folder: the graph (checked above) names its weights file, which ONNX Runtime maps
        opened = session(folder / GRAPH_FILE, threads or min(2, os.cpu_count() or 1))
    except ImportError as error:
        return TextGraphState(None, f"{error.name or 'a package'} is not installed")
    except Exception as error:  # noqa: BLE001 - a damaged file: the PyTorch path answers instead
        return TextGraphState(None, f"its text graph does not load ({type(error).__name__}: {str(error)[:120]})")
    return TextGraphState(OnnxTextModel(model_id, manifest, opened, tokenizer, folder), "", manifest)


def load_text_graph(model_id: str, root: Path | None = None) -> OnnxTextModel | None:
    """The checked ONNX text path of ``model_id``, or None (the reason is logged)."""
    state = text_graph_state(model_id, root)
    if state.model is None:
        log.info("text queries of %s through PyTorch: %s", model_id, state.reason)
    return state.model
