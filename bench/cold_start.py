"""Cold start of the CLI, side by side with `python -c "import torch"`: median of N interleaved runs.

    python bench/cold_start.py [--db ~/.local/share/cots/demo/demo.db] [--runs 5] [--write]

Each round runs every command once, in turn, so a load change on a shared machine hits them alike.
Rows: `import torch` (the reference), `cots search` (the ONNX text graph of issue 33, no torch), with the graph
switched off (the lean PyTorch text path of issue 12), and with the lean path switched off too (the full model:
timm, transformers, image tower), the GUI's engine loading its model and
answering a first query (without the window), the GUI itself (`cots gui`, offscreen: process start to its
window shown, and to the first results delivered for a query typed at once), an empty Qt window (the
window's own start), and commands that need no model.
`--write` puts the table into bench/RESULTS.md (its own section, replaced on each run). Needs an indexed
library: `cots demo` makes one.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Cold start of the CLI (bench/cold_start.py)"
# The same `cots search` with the lean text path disabled: what every search cost before it.
FULL_PATH = ("import sys, cots_core.loading as loading; loading.load_text_query_model = lambda *a, **k: None; "
             "from app.cli import main; sys.exit(main(sys.argv[1:]))")
# The GUI's engine, without the window: load the library's model, answer the first query.
GUI_FIRST_QUERY = ("import sys; from app.gui.engine_service import EngineService; from app.gui.service import Filters; "
                   "s = EngineService(sys.argv[1]); s.load_model(); s.search(sys.argv[2], Filters()); s.close()")

# `cots gui` itself, offscreen: prints when its window is first shown (then types the query, as a person would
# before the model has loaded: the window queues it) and when the first results reach the window.
GUI_WINDOW = """
import os, sys, time
from app.gui import search_controller, window
show_event, show_hits = window.MainWindow.showEvent, search_controller.SearchController._show_hits
def shown(self, event):
    show_event(self, event)
    if not getattr(self, "_bench_shown", False):
        self._bench_shown = True
        print("shown", time.time(), flush=True)
        self.search.box.setText(sys.argv[2])
        self.searching.run_query(sys.argv[2])
def delivered(self, *args):
    show_hits(self, *args)
    print("results", time.time(), self.model.rowCount(), flush=True)
    os._exit(0)
window.MainWindow.showEvent, search_controller.SearchController._show_hits = shown, delivered
from app.cli import main
main(["gui", "--db", sys.argv[1]])
"""
QT_WINDOW = ("import time; from PySide6.QtWidgets import QApplication, QMainWindow; app = QApplication([]); "
             "w = QMainWindow(); w.show(); app.processEvents(); print('shown', time.time(), flush=True)")
GUI_ROWS = {"shown": "GUI: process start -> window shown", "results": "GUI: process start -> first results shown"}
QT_ROW = "Qt alone: process start -> empty window shown"


def timed_events(argv: list[str]) -> dict[str, float]:
    """Seconds from process start to each event line (`NAME EPOCH ...`) the process prints."""
    with tempfile.TemporaryDirectory() as config:  # the GUI's settings go there, not into the person's
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=config)
        started = time.time()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    events = {line.split()[0]: float(line.split()[1]) - started for line in done.stdout.splitlines()
              if line.split() and line.split()[0] in ("shown", "results")}
    if done.returncode != 0 or not events:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
    return events


def commands(db: str, query: str) -> dict[str, list[str]]:
    py = sys.executable
    search = ["search", query, "--db", db, "-k", "3"]
    torch_text = ["env", "COTS_TEXT_RUNTIME=torch"]  # the text graph off: the lean PyTorch path of issue 12
    return {
        'python -c "import torch"': [py, "-c", "import torch"],
        f'cots search "{query}" (ONNX text graph)': [py, "-m", "app.cli", *search],
        f'cots search "{query}" (lean PyTorch text path)': [*torch_text, py, "-m", "app.cli", *search],
        f'cots search "{query}" (full model)': [*torch_text, py, "-c", FULL_PATH, *search],
        "GUI engine: load model + first query (ONNX text graph)": [py, "-c", GUI_FIRST_QUERY, db, query],
        "GUI engine: load model + first query (lean PyTorch)": [*torch_text, py, "-c", GUI_FIRST_QUERY, db, query],
        "GUI engine: load model + first query (full)": [*torch_text, py, "-c", FULL_PATH.split("from app.cli")[0]
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


def private_copy(db: str) -> str:
    """The library and its index files copied to a temporary folder: the GUI rescans its folders at start."""
    source = Path(db)
    target = Path(tempfile.mkdtemp(prefix="cots-gui-bench-"))
    for path in source.parent.glob(source.stem + ".*"):
        if not path.name.endswith(".lock"):
            shutil.copy2(path, target / path.name)
    return str(target / source.name)


def measure(cmds: dict[str, list[str]], runs: int, db: str, query: str) -> dict[str, list[float]]:
    gui = [sys.executable, "-c", GUI_WINDOW, private_copy(db), query]
    qt = [sys.executable, "-c", QT_WINDOW]
    times: dict[str, list[float]] = {name: [] for name in [*cmds, *GUI_ROWS.values(), QT_ROW]}
    for argv in cmds.values():  # one warm-up round: it fills the page cache (a cold process, not a cold disk)
        run_once(argv)
    timed_events(gui)
    timed_events(qt)
    for _ in range(runs):
        for name, argv in cmds.items():
            times[name].append(run_once(argv))
        for event, seconds in timed_events(gui).items():
            times[GUI_ROWS[event]].append(seconds)
        times[QT_ROW].append(timed_events(qt)["shown"])
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
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled modules cached, as on a person's machine
    times = measure(commands(args.db, args.query), args.runs, args.db, args.query)
    text = table(times, args.runs, args.db)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
