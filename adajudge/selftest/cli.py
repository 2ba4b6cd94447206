"""Command line of `python -m adajudge.selftest` (see `adajudge.selftest`)."""
import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adajudge.ops import OPS
from adajudge.selftest import report
from adajudge.selftest.rows import BACKENDS, plan, run_row, skip_reason
from adajudge.testing.cases import DTYPES
from adajudge.testing.check import hypothesis_available

# Cases per row by default, sized to finish in under 2 minutes on a GPU with an empty Triton cache (an
# estimate from CPU timings, docs/testing.md): each new shape, stride class or dtype on a Triton row is a
# kernel compile there (~0.15-0.25 s; 10 cases per row reach ~230 distinct specialisations in all), so those
# rows draw fewer cases.
DEFAULT_EXAMPLES = {"triton": 10, "torch": 50, "reference": 50}
TABLE_WIDTH = 140
DTYPE_NAMES = {str(dtype).removeprefix("torch."): dtype for dtype in DTYPES}


def _subset(kind: str, allowed):
    def parse(text: str) -> list[str]:
        chosen = [item.strip() for item in text.split(",") if item.strip()]
        if not chosen or any(item not in allowed for item in chosen):
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(allowed)}, got {text!r}")
        return chosen

    parse.__name__ = kind
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m adajudge.selftest",
        description="Do adajudge's kernels give the right answers here? Every op x backend x dtype x layout the device "
                    "supports against adajudge.reference (forward and every gradient, the test suite's tolerance rule), "
                    "and torch.library.opcheck on the custom ops. Exit status 1 on any failure.")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where to run (default: cuda if available)")
    parser.add_argument("--backend", type=_subset("backends", BACKENDS), default=list(BACKENDS),
                        help=f"comma-separated backends (default: {','.join(BACKENDS)}); 'reference' checks the harness")
    parser.add_argument("--ops", type=_subset("ops", OPS), default=list(OPS),
                        help=f"comma-separated ops (default: {','.join(OPS)})")
    parser.add_argument("--dtypes", type=_subset("dtypes", list(DTYPE_NAMES)), default=None,
                        help="comma-separated dtypes (default: every dtype the device and backend support)")
    parser.add_argument("--examples", type=int, default=None,
                        help="cases per row (default: " + ", ".join(f"{n} for {b}" for b, n in DEFAULT_EXAMPLES.items()) + ")")
    parser.add_argument("--json", type=Path, default=None, help="write one record per row to this file")
    return parser


@contextlib.contextmanager
def _hypothesis_out_of_the_way():
    """No example database and no `.hypothesis` folder in the user's working directory (hypothesis's caches
    go to a temporary folder), and no hypothesis reports in the middle of the progress bar (the failures are
    printed under the table)."""
    from hypothesis import Verbosity, settings
    from hypothesis.configuration import set_hypothesis_home_dir

    settings.register_profile("adajudge-selftest", parent=settings.default, database=None, verbosity=Verbosity.quiet)
    settings.load_profile("adajudge-selftest")
    with tempfile.TemporaryDirectory(prefix="adajudge-selftest-") as home:
        set_hypothesis_home_dir(home)
        try:
            yield
        finally:
            set_hypothesis_home_dir(None)


def _unreached(rows) -> list[str]:
    """Registered custom ops that no Triton row's case called (they escaped opcheck)."""
    from adajudge.testing.opcheck import registered_ops

    reached = {call["op"] for row in rows if row.opcheck for call in row.opcheck}
    return [name for name in registered_ops() if name not in reached]


def _run_rows(rows, *, device, examples, engine, console, after_row) -> None:
    """Run every row in order under a progress bar counting cases; `after_row()` after each."""
    runnable = [row for row in rows if skip_reason(row.backend, device) is None]
    with _hypothesis_out_of_the_way() if engine == "hypothesis" else contextlib.nullcontext(), Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
            transient=True) as progress:
        task = progress.add_task("self-test", total=sum(examples(row) for row in runnable))
        done = 0
        for row in rows:
            progress.update(task, description=row.label)
            run_row(row, device=device, examples=examples(row), on_case=lambda: progress.advance(task))
            if row in runnable:
                done += examples(row)
                progress.update(task, completed=done)
            after_row()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.examples is not None and args.examples < 1:
        raise SystemExit(f"--examples: expected an int >= 1, got {args.examples}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: expected a CUDA device, torch.cuda.is_available() is False")
    device = torch.device(args.device)
    dtypes = None if args.dtypes is None else [DTYPE_NAMES[name] for name in args.dtypes]
    rows = plan(args.ops, args.backend, dtypes, device)
    console = Console(width=None if sys.stdout.isatty() else TABLE_WIDTH)  # a log or a pipe gets the whole table
    engine = "hypothesis" if hypothesis_available() else "seeded"
    if engine == "seeded":
        console.print("hypothesis is not installed: each row runs a fixed seeded list of cases, and a failing case is "
                      "not shrunk (pip install 'adajudge[testing]')")
    meta = {"command": " ".join(["python -m adajudge.selftest", *(sys.argv[1:] if argv is None else argv)]),
            **report.environment(device), "engine": engine,
            "examples": DEFAULT_EXAMPLES if args.examples is None else args.examples}
    started = time.perf_counter()

    def write(unreached: list[str], complete: bool) -> None:
        if args.json is not None:  # after every row, so a run cut short keeps what it checked
            report.write_json(args.json, rows=rows, unreached=unreached,
                              meta={**meta, "seconds": round(time.perf_counter() - started, 1), "complete": complete})

    _run_rows(rows, device=device, examples=lambda row: DEFAULT_EXAMPLES[row.backend] if args.examples is None else args.examples,
              engine=engine, console=console, after_row=lambda: write([], complete=False))
    unreached = _unreached(rows) if set(args.ops) == set(OPS) and any(
        row.backend == "triton" and row.status != "skipped" for row in rows) else []
    write(unreached, complete=True)
    per_row = (", ".join(f"{n} for {b}" for b, n in DEFAULT_EXAMPLES.items() if b in args.backend)
               if args.examples is None else str(args.examples))
    title = (f"adajudge self-test on {meta['device']['name']} ({args.device}"
             f"{', Triton interpreter' if meta['triton_interpret'] and args.device == 'cpu' else ''}): "
             f"{engine} cases per row: {per_row}")
    console.print(report.table(rows, title))
    for failure in report.failures(rows):
        console.print(failure, markup=False, highlight=False)
    for name in unreached:
        console.print(f"{name}: registered, but no case calls it, so opcheck never checked it", style="bold red")
    counts = {status: sum(row.status == status for row in rows) for status in ("passed", "failed", "skipped")}
    console.print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped "
                  f"in {time.perf_counter() - started:.0f} s")
    return 1 if counts["failed"] or unreached else 0
