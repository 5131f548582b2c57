"""Rerun every test that asserts a learning or quality threshold over seeds and thread counts.

Each audited test reads its seed offset from COTS_TEST_SEED and, through the `record_measure` fixture
(tests/conftest.py), appends what it compared with its bound to the JSONL file named by
COTS_TEST_MEASURES. This script runs the tests once per (thread count, seed), collects those lines and
prints the table of bench/RESULTS.md: the worst value seen per bound and its margin.

    nice -n 10 .venv/bin/python bench/threshold_audit.py --out bench/results/threshold_audit.jsonl   # all (hours on 2 cores)
    .venv/bin/python bench/threshold_audit.py --only dvae --seeds 0 1 --threads 1            # a subset
    .venv/bin/python bench/threshold_audit.py --out bench/results/threshold_audit.jsonl --table      # table only

Runs already in --out (same test group, seed, threads) are skipped, so an interrupted audit resumes.
Margin: how far the worst value is from the bound, as a fraction of the bound (min bounds:
(worst - bound) / bound; max bounds: (bound - worst) / bound). Under 20 % means the test needs a sturdier design.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# group name -> (pytest node ids, whether the seed can change the result, whether torch's thread count can)
GROUPS: dict[str, tuple[list[str], bool, bool]] = {
    "masking": (["tests/core/test_masking.py::test_bert_masking_rule"], True, True),
    "dvae": (["tests/core/test_dvae.py::test_dvae_learns_to_reconstruct_and_round_trips"], True, True),
    "overfit": (["tests/core/test_model.py::test_tiny_model_overfits_one_batch"], True, True),
    "noisy_run": (["tests/trainer/test_training.py::test_learning_beats_untrained_and_chance",
                   "tests/trainer/test_training.py::test_amf_filters_mostly_mismatched_pairs"], True, True),
    # hnswlib builds with all cores whatever OMP_NUM_THREADS says: only the seed matters
    "hnsw": (["tests/app/test_vector_index.py::test_hnsw_recall_at_10_on_20k_random_384d_vectors"], True, False),
    # cots-lite's zero-shot model is fixed weights: only the thread count can move its numbers
    "lite_zero_shot": (["tests/core/test_lite.py::test_real_model_zero_shot_retrieval_floor_on_real_photos"],
                       False, True),
    "lite_finetune": (["tests/core/test_lite_finetune.py::test_finetune_from_cots_lite_raises_heldout_text_to_image_r1"],
                      True, True),
}


def _done(out: Path) -> set[tuple[str, int, int | None]]:
    """(group, seed, threads) already run; threads None for groups the thread count cannot change."""
    if not out.is_file():
        return set()
    return {(r["group"], r["seed"], r["threads"] if GROUPS[r["group"]][2] else None)
            for r in map(json.loads, out.read_text().splitlines()) if r.get("type") == "run"}


def run_group(group: str, seed: int, threads: int, out: Path) -> None:
    nodes = GROUPS[group][0]
    with tempfile.TemporaryDirectory() as tmp:
        measures = Path(tmp) / "measures.jsonl"
        env = {**os.environ, "COTS_TEST_SEED": str(seed), "COTS_TEST_MEASURES": str(measures),
               "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *nodes],
                                cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        lines = measures.read_text().splitlines() if measures.is_file() else []
    with out.open("a") as handle:
        for line in lines:
            handle.write(json.dumps({"type": "measure", "group": group, "seed": seed, "threads": threads,
                                     **json.loads(line)}) + "\n")
        handle.write(json.dumps({"type": "run", "group": group, "seed": seed, "threads": threads,
                                 "passed": result.returncode == 0, "seconds": round(seconds, 1),
                                 "tail": "" if result.returncode == 0 else result.stdout[-2000:]}) + "\n")
    status = "passed" if result.returncode == 0 else "FAILED"
    print(f"{group} seed {seed} threads {threads}: {status} in {seconds:.0f} s, {len(lines)} values", flush=True)


def table(out: Path) -> str:
    """Markdown table: one row per (test, measured quantity), worst over every run in `out`."""
    rows: dict[tuple[str, str], dict] = {}
    runs: dict[str, list[dict]] = {}
    for record in map(json.loads, out.read_text().splitlines()):
        if record["type"] == "run":
            runs.setdefault(record["group"], []).append(record)
            continue
        key = (record["test"], record["name"])
        row = rows.setdefault(key, {"bound": record["bound"], "kind": record["kind"], "values": []})
        row["values"].append(record["value"])
    lines = ["| test | measured | asserted | worst | best | runs | margin |", "|---|---|---|---|---|---|---|"]
    for (test, name), row in rows.items():
        values, bound = row["values"], row["bound"]
        worst = min(values) if row["kind"] == "min" else max(values)
        best = max(values) if row["kind"] == "min" else min(values)
        margin = (worst - bound) / abs(bound) if row["kind"] == "min" else (bound - worst) / abs(bound)
        sign = ">=" if row["kind"] == "min" else "<="
        flag = " **(< 20 %)**" if margin < 0.2 else ""
        lines.append(f"| `{test.split('::')[-1]}` | {name.replace('|', '&#124;')} | {sign} {bound:g} | {worst:.4g} | {best:.4g} | "
                     f"{len(values)} | {100 * margin:.0f} %{flag} |")
    failed = [f"{g} seed {r['seed']} threads {r['threads']}" for g, rs in runs.items() for r in rs if not r["passed"]]
    lines.append("")
    lines.append(f"Runs: {sum(len(r) for r in runs.values())}; failed: {', '.join(failed) if failed else 'none'}.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "threshold_audit.jsonl")
    parser.add_argument("--only", nargs="*", default=None, help=f"groups to run (default all: {', '.join(GROUPS)})")
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--table", action="store_true", help="only print the table of what --out holds")
    args = parser.parse_args()
    if not args.table:
        done = _done(args.out)
        for group in args.only or list(GROUPS):
            if group not in GROUPS:
                parser.error(f"unknown group {group!r}: one of {', '.join(GROUPS)}")
            _, seed_matters, threads_matter = GROUPS[group]
            for threads in args.threads:
                for seed in args.seeds if seed_matters else args.seeds[:1]:
                    if (group, seed, threads if threads_matter else None) not in done:
                        run_group(group, seed, threads, args.out)
                        done = _done(args.out)
    print(table(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
