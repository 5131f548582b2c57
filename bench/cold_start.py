"""Cold start of the CLI, side by side with `python -c "import torch"`: median of N interleaved runs.

    python bench/cold_start.py [--db ~/.local/share/cots/demo/demo.db] [--runs 5] [--write]

Each round runs every command once, in turn, so a load change on a shared machine hits them alike.
Rows: `import torch` (the reference), `cots search` (the lean text path), `cots search` with the lean path
switched off (the full model: timm, transformers, image tower), the GUI's engine loading its model and
answering a first query (without the window), and commands that need no model.
`--write` puts the table into bench/RESULTS.md (its own section, replaced on each run). Needs an indexed
library: `cots demo` makes one.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Cold start of the CLI (bench/cold_start.py)"
# The same `cots search` with the lean text path disabled: what every search cost before it.
FULL_PATH = ("import sys, cots_core.lean_text as lean; lean.load_lean_text_model = lambda *a, **k: None; "
             "from app.cli import main; sys.exit(main(sys.argv[1:]))")
# The GUI's engine, without the window: load the library's model, answer the first query.
GUI_FIRST_QUERY = ("import sys; from app.gui.engine_service import EngineService; from app.gui.service import Filters; "
                   "s = EngineService(sys.argv[1]); s.load_model(); s.search(sys.argv[2], Filters()); s.close()")


def commands(db: str, query: str) -> dict[str, list[str]]:
    py = sys.executable
    search = ["search", query, "--db", db, "-k", "3"]
    return {
        'python -c "import torch"': [py, "-c", "import torch"],
        f'cots search "{query}" (lean text path)': [py, "-m", "app.cli", *search],
        f'cots search "{query}" (full model)': [py, "-c", FULL_PATH, *search],
        "GUI engine: load model + first query (lean)": [py, "-c", GUI_FIRST_QUERY, db, query],
        "GUI engine: load model + first query (full)": [py, "-c", FULL_PATH.split("from app.cli")[0]
                                                        + GUI_FIRST_QUERY.removeprefix("import sys; "), db, query],
        "cots status": [py, "-m", "app.cli", "status", "--db", db],
        "cots --help": [py, "-m", "app.cli", "--help"],
    }


def run_once(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return elapsed


def measure(cmds: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for argv in cmds.values():  # one warm-up round: it fills the page cache (a cold process, not a cold disk)
        run_once(argv)
    for _ in range(runs):
        for name, argv in cmds.items():
            times[name].append(run_once(argv))
    return times


def table(times: dict[str, list[float]], runs: int, db: str) -> str:
    reference = statistics.median(next(iter(times.values())))
    load = os.getloadavg()[0]
    lines = [SECTION, "",
             f"Median of {runs} interleaved runs, process start to exit, on {os.cpu_count()} cores "
             f"({platform.processor() or platform.machine()}), load average {load:.1f} at the end "
             f"(the machine is shared: compare rows of one table only). Library: `{db}`.",
             f"Command: `python bench/cold_start.py --db {db} --runs {runs} --write`.", "",
             "| command | median s | min s | max s | x import torch |", "|---|---|---|---|---|"]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| `{name}` | {median:.2f} | {min(values):.2f} | {max(values):.2f} | "
                     f"{median / reference:.2f} |")
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    current = RESULTS.read_text() if RESULTS.exists() else ""
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    updated = pattern.sub(lambda _: text + "\n", current) if pattern.search(current) else \
        current.rstrip("\n") + "\n\n" + text
    RESULTS.write_text(updated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default=str(Path("~/.local/share/cots/demo/demo.db").expanduser()))
    parser.add_argument("--query", default="a cat")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="record the table in bench/RESULTS.md")
    args = parser.parse_args()
    if not Path(args.db).is_file():
        raise SystemExit(f"no library at {args.db}: run `cots demo` (or give --db)")
    os.chdir(Path(__file__).resolve().parents[1])  # `-m app.cli` runs this checkout
    times = measure(commands(args.db, args.query), args.runs)
    text = table(times, args.runs, args.db)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
