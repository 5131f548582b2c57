import json
import os

import pytest

# Nothing in the test suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see app/cli.py
# Indexing tests run the image tower in PyTorch (an ONNX export per test model would cost seconds each);
# tests/core/test_image_runtime.py switches ONNX Runtime on where it is the subject.
os.environ.setdefault("COTS_IMAGE_RUNTIME", "torch")
# Likewise the text graph (cots_core.text_graph): written and used where it is the subject
# (tests/core/test_text_graph.py, tests/app/test_query_without_torch.py).
os.environ.setdefault("COTS_TEXT_RUNTIME", "torch")

# bench/threshold_audit.py reruns the tests that assert learning or quality with other seeds and
# thread counts, and collects what they measured (see bench/RESULTS.md, "Learning and quality thresholds").
SEED_ENV = "COTS_TEST_SEED"
MEASURES_ENV = "COTS_TEST_MEASURES"


@pytest.fixture(scope="session")
def seed_offset() -> int:
    """Added to a quality test's own seeds: 0 (the committed seeds) unless COTS_TEST_SEED says otherwise."""
    return int(os.environ.get(SEED_ENV, "0"))


@pytest.fixture
def record_measure(request, record_property, seed_offset):
    """record_measure(name, value, bound, kind): what a threshold assertion compared, for the audit.

    kind "min": the test asserts value >= bound; "max": value <= bound. Always a junit property; also a
    JSON line in the file named by COTS_TEST_MEASURES when that is set.
    """
    def record(name: str, value: float, bound: float, kind: str) -> None:
        if kind not in ("min", "max"):
            raise ValueError(f"kind must be 'min' or 'max', got {kind!r}")
        entry = {"test": request.node.nodeid, "name": name, "value": float(value), "bound": float(bound),
                 "kind": kind, "seed_offset": seed_offset, "threads": os.environ.get("OMP_NUM_THREADS")}
        record_property(name, entry)
        path = os.environ.get(MEASURES_ENV)
        if path:
            with open(path, "a") as handle:
                handle.write(json.dumps(entry) + "\n")

    return record
