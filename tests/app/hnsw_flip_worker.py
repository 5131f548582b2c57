"""Child process of test_hostile_files: damage an index file many ways, load and query each (a segfault
here must not take the test run with it). Prints one line per case: "<case> refused|loaded|error"."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from app.library.hnsw_file import HnswFileDamaged
from app.library.vector_index import VectorIndex


def main(prefix: str, dim: int, cases: list[str]) -> None:
    clean = Path(prefix + ".hnsw").read_bytes()
    query = np.ones(dim, np.float32) / np.sqrt(dim)
    for case in cases:
        kind, where, bit = case.split(":")
        data = bytearray(clean)
        if kind == "flip":
            data[int(where)] ^= 1 << int(bit)
        else:  # truncate, padded back to the saved size so that the json's size check passes
            data = data[:int(where)] + b"\0" * (len(clean) - int(where))
        Path(prefix + ".hnsw").write_bytes(bytes(data))
        try:
            loaded = VectorIndex.load(Path(prefix), dim)
        except HnswFileDamaged:
            print(case, "refused", flush=True)
            continue
        if loaded is None:
            print(case, "error", flush=True)
            continue
        index = loaded[0]
        index.search(query, 10, exact=False)
        index.get(index.ids)
        print(case, "loaded", flush=True)
    shutil.copyfile(prefix + ".hnsw", prefix + ".hnsw.last")
    Path(prefix + ".hnsw").write_bytes(clean)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
