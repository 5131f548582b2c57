"""Check an hnswlib index file before hnswlib reads it.

hnswlib trusts its file: one flipped bit in a size, an offset, the entry point or a neighbour id ends in a
segfault (issue 21), not an exception. So the whole structure is checked here first, against what this
program would have written for the expected dimension and element count; any mismatch raises
``HnswFileDamaged`` and the library rebuilds the index from SQLite, its source of truth.

The layout (hnswlib 0.8 ``HierarchicalNSW::saveIndex``, little-endian): a 96-byte header
``offsetLevel0, max_elements, cur_element_count, size_data_per_element, label_offset, offsetData`` (size_t),
``maxlevel`` (int), ``enterpoint_node`` (uint32), ``maxM, maxM0, M`` (size_t), ``mult`` (double),
``ef_construction`` (size_t); then ``cur_element_count`` level-0 records of ``size_data_per_element`` bytes
(a uint32 link header whose low 16 bits count the links and whose third byte is the deleted mark, ``maxM0``
uint32 neighbour ids, the vector as float32, the uint64 label); then per element a uint32 byte length of
its upper-level links and that many bytes, one block of ``4 + 4 * maxM`` per level above 0.
"""
from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np

HEADER = struct.Struct("<6QiI3QdQ")
MAX_M = 4096  # hnswlib's own recommendation is 2-100; anything near this is damage
LENGTH = struct.Struct("<I")
CHUNK = 65536  # level-0 records checked at a time
MAX_LEVEL = 64  # levels grow like log(n) / log(M): 64 is far beyond any real library


class HnswFileDamaged(ValueError):
    """The index file is not what this program writes; ``str(error)`` says what is wrong."""


def check_hnsw_file(path: Path, dim: int, live: int) -> int:
    """The number of elements (live and deleted) of ``path``; raises HnswFileDamaged unless it is a
    structurally sound hnswlib file of at least ``live`` float32 vectors of ``dim`` (inner product space)
    whose every offset, level and neighbour id is in range (about 0.1 s per 100k vectors). Load it with ``max_elements`` = that number:
    the file's own ``max_elements`` is then never used (a flipped bit there is a huge allocation)."""
    size = os.path.getsize(path)
    header = checked_header(path, size, dim, live)
    elements, per_element, max_m0 = header["elements"], header["per_element"], header["max_m0"]
    if elements == 0:
        if size != HEADER.size:
            raise HnswFileDamaged(f"an empty index of {size} bytes")
        return 0
    if not 0 <= header["max_level"] <= MAX_LEVEL or header["entry"] >= elements:
        raise HnswFileDamaged(f"entry point {header['entry']} at level {header['max_level']} out of range")
    level0_end = HEADER.size + elements * per_element
    if size < level0_end + 4 * elements:
        raise HnswFileDamaged(f"{size} bytes, too short for {elements} elements")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    records = data[HEADER.size:level0_end].reshape(elements, per_element)
    # in chunks: a million-item file is gigabytes. The vectors themselves cannot crash hnswlib; a damaged
    # one is caught by the library's spot check against SQLite (Library._agrees_with_database)
    for start in range(0, elements, CHUNK):
        _check_links(records[start:start + CHUNK, :4 + 4 * max_m0], max_m0, elements, "level 0")
    _check_upper_levels(bytes(data[level0_end:]), elements, header["entry"], header["max_level"], header["max_m"])
    return elements


def checked_header(path: Path, size: int, dim: int, live: int) -> dict[str, int]:
    """The header's fields the walk needs, once every field agrees with an inner-product index of ``dim``."""
    if size < HEADER.size:
        raise HnswFileDamaged(f"{size} bytes, shorter than the {HEADER.size}-byte header")
    with open(path, "rb") as handle:
        (offset_level0, max_elements, elements, per_element, label_offset, offset_data, max_level, entry,
         max_m, max_m0, m, mult, ef_construction) = HEADER.unpack(handle.read(HEADER.size))
    links0 = 4 + 4 * max_m0
    if elements < live:
        raise HnswFileDamaged(f"the header counts {elements} elements, the ids file {live}")
    expected = {"offsetLevel0": (offset_level0, 0),
                "offsetData": (offset_data, links0), "label_offset": (label_offset, links0 + 4 * dim),
                "size_data_per_element": (per_element, links0 + 4 * dim + 8), "maxM0": (max_m0, 2 * m),
                "maxM": (max_m, m)}
    for name, (found, wanted) in expected.items():
        if found != wanted:
            raise HnswFileDamaged(f"header field {name} is {found}, not {wanted}")
    if not 2 <= m <= MAX_M or not 1 <= ef_construction <= 1 << 20 \
            or not math.isfinite(mult) or not abs(mult - 1 / math.log(m)) < 1e-9:
        raise HnswFileDamaged("header graph parameters (M, ef_construction, max_elements, mult) out of range")
    return {"elements": elements, "per_element": per_element, "max_level": max_level, "entry": entry,
            "max_m": max_m, "max_m0": max_m0}


def _check_upper_levels(tail: bytes, elements: int, entry: int, max_level: int, max_m: int) -> None:
    """Walk the per-element length prefixes after level 0 (most are 0) and check the link blocks in bulk."""
    block = 4 + 4 * max_m
    position, blocks, entry_level = 0, [], 0
    for element in range(elements):
        if position + 4 > len(tail):
            raise HnswFileDamaged(f"the file ends inside element {element}'s links")
        (length,) = LENGTH.unpack_from(tail, position)
        position += 4
        if length:
            if length % block or length // block > max_level or position + length > len(tail):
                raise HnswFileDamaged(f"element {element} claims {length} bytes of upper links")
            blocks.append((position, length))
            position += length
        if element == entry:
            entry_level = length // block
    if position != len(tail):
        raise HnswFileDamaged(f"{len(tail) - position} bytes after the last element")
    if entry_level != max_level:
        raise HnswFileDamaged(f"the entry point is at level {entry_level}, the header says {max_level}")
    if blocks:
        upper = np.frombuffer(b"".join(tail[start:start + length] for start, length in blocks), np.uint8)
        _check_links(upper.reshape(-1, block), max_m, elements, "an upper level")


def _check_links(blocks: np.ndarray, capacity: int, elements: int, where: str) -> None:
    """Each row: a uint32 header (low 16 bits: link count) then ``capacity`` uint32 neighbour ids."""
    words = np.ascontiguousarray(blocks).view("<u4")
    counts = (words[:, 0] & 0xFFFF).astype(np.int64)
    if (counts > capacity).any():
        raise HnswFileDamaged(f"a link list at {where} is longer than {capacity}")
    used = np.arange(capacity)[None, :] < counts[:, None]
    if (words[:, 1:][used] >= elements).any():
        raise HnswFileDamaged(f"a neighbour id at {where} is out of range")
