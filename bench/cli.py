"""`python -m bench`: time adajudge's ops against eager and compiled PyTorch, write results and plots.

    python -m bench --quick --out bench-results --markdown
    python -m bench --ops multiview_pool --passes forward,backward --device cuda
    python -m bench --preset pooling --pool-forward two_phase      # the other accumulator variant

Writes `results.json`, `speedup_vs_size.png`, `gbps_vs_size.png` (and `results.md` with `--markdown`)
under `--out`, and prints a table.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from rich.console import Console

from adajudge.kernels.pool_forward import FORWARD_VARIANT_ENV, FORWARD_VARIANTS, forward_variant
from adajudge.tables import print_note
from bench import environment
from bench.bandwidth import copy_bandwidth
from bench.cases import IMPLS, OPS, Case
from bench.passes import PASSES
from bench.report import markdown, print_table, write_json
from bench.static_report import dtype_name, static_report
from bench.sweeps import PRESETS, budget, omitted, sweep_points

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
H100_GBPS = 3350.0  # H100 SXM5 80 GB datasheet HBM3 bandwidth, 3.35 TB/s; not measured here


def _choices(allowed):
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(item.strip() for item in text.split(",") if item.strip())
        unknown = [item for item in chosen if item not in allowed]
        if not chosen or unknown:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(allowed)}, got {text!r}")
        return tuple(item for item in allowed if item in chosen)

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=PRESETS, default="full", help="sizes and time per case (default: full)")
    parser.add_argument("--quick", dest="preset", action="store_const", const="quick", help="same as --preset quick")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="output folder (default: bench-results)")
    parser.add_argument("--ops", type=_choices(OPS), default=OPS, help=f"comma-separated, of {','.join(OPS)}")
    parser.add_argument("--impls", type=_choices(IMPLS), default=IMPLS, help=f"comma-separated, of {','.join(IMPLS)}")
    parser.add_argument("--passes", type=_choices(PASSES), default=PASSES, help=f"comma-separated, of {','.join(PASSES)}")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown and write results.md")
    parser.add_argument("--no-static-report", action="store_true", help="skip the Triton compile check (sm_80/sm_90)")
    parser.add_argument("--h100-gbps", type=float, default=H100_GBPS,
                        help=f"assumed H100 bandwidth for the labelled prediction (default {H100_GBPS:g}, datasheet)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU intra-op threads (default 1 on cpu: on a shared machine OpenMP barriers with a "
                             "descheduled thread cost milliseconds per op; 0 = torch's own default)")
    parser.add_argument("--pool-forward", choices=FORWARD_VARIANTS, default=None,
                        help=f"Triton pooling forward variant: sets ${FORWARD_VARIANT_ENV} for this run "
                             "(default: the environment's, else fused); recorded in every record")
    parser.add_argument("--time-limit-s", type=float, default=None,
                        help="start no new case after this many seconds; cases not started are listed in "
                             "results.json (meta.not_run)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: expected a visible CUDA device, got none (torch.cuda.is_available() is False)")
    return torch.device(name)


def _static(args, cases: list[Case], dtype: torch.dtype, plan, console: Console) -> dict | None:
    if "adajudge" not in args.impls:
        return None
    if args.no_static_report:
        return {"available": False, "reason": "skipped (--no-static-report)", "archs": [], "hidden_sizes": [], "rows": []}
    start = time.perf_counter()
    sizes = list(dict.fromkeys(c.shape["D"] for c in cases if "D" in c.shape and c.op != "adajudge_head"))
    report = static_report(sizes[: plan.static_sizes], [dtype])
    state = f"{len(report['rows'])} rows" if report["available"] else f"unavailable: {report['reason']}"
    print_note(console, f"Triton static compile report (sm_80/sm_90): {state} [{time.perf_counter() - start:.1f} s]")
    return report


def _write_results(out: Path, meta: dict, records: list[dict], *, copy: dict, elapsed_s: float, complete: bool) -> None:
    """Write `results.json`: after every case (`complete: false`, the copy bandwidth from the start only),
    so a run stopped from outside keeps what it measured, and once more at the end."""
    measured = [bw["gbps"] for bw in (copy["start"], copy["end"]) if bw is not None]
    meta["copy_bandwidth"] = {**copy, "gbps": max(measured)}
    meta["complete"] = complete
    meta["elapsed_s"] = elapsed_s
    for record in records:
        record["fraction_of_copy_bandwidth"] = None if record["gbps"] is None else record["gbps"] / meta["copy_bandwidth"]["gbps"]
        record["versions"] = meta["versions"]
        record["git_commit"] = meta["git"]["commit"]
        record["machine"] = meta["machine_description"]
        record["pool_forward"] = meta["pool_forward"]
    write_json(out / "results.json", meta, records)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    console = Console()
    started = time.perf_counter()
    if args.pool_forward is not None:
        os.environ[FORWARD_VARIANT_ENV] = args.pool_forward
    device = _device(args.device)
    if args.threads is not None and args.threads < 0:
        raise SystemExit(f"--threads: expected an integer >= 0, got {args.threads}")
    if args.time_limit_s is not None and not args.time_limit_s > 0:
        raise SystemExit(f"--time-limit-s: expected seconds > 0, got {args.time_limit_s}")
    threads = args.threads if args.threads is not None else (1 if device.type == "cpu" else 0)
    if threads > 0:
        torch.set_num_threads(threads)
    dtype = DTYPES[args.dtype or ("bfloat16" if device.type == "cuda" else "float32")]
    cases = [
        Case(op, variant, sweep, shape, dtype, device)
        for op, variant, sweep, shape in sweep_points(args.preset, device.type)
        if op in args.ops
    ]
    plan = budget(args.preset, device.type)
    left_out = {key: reason for key, reason in omitted(args.preset, device.type).items()
                if key[0] in args.ops and key[1] in args.impls}
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": " ".join(["python -m bench", *argv]),
        "preset": args.preset,
        "device": device.type,
        "dtype": dtype_name(dtype),
        "impls": list(args.impls),
        "passes": list(args.passes),
        "pool_forward": forward_variant(),
        "time_limit_s": args.time_limit_s,
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": environment.versions(),
        "git": environment.git_state(),
        "machine": environment.machine(device),
        "machine_description": environment.description(device),
        "torch_threads": torch.get_num_threads(),
        "budget": vars(plan),
        "omitted": [{"op": op, "impl": impl, "reason": reason} for (op, impl), reason in left_out.items()],
    }
    print_note(console, f"{len(cases)} cases × {len(args.impls)} impls × {len(args.passes)} passes on "
                        f"{meta['machine_description']}")
    for item in meta["omitted"]:
        print_note(console, f"not run: {item['op']} × {item['impl']} ({item['reason']})")
    plotting = importlib.util.find_spec("matplotlib") is not None
    if not plotting:
        print_note(console, "plots: skipped (matplotlib missing; pip install matplotlib)")
    start_bw = copy_bandwidth(device, plan.copy_bytes)
    static = _static(args, cases, dtype, plan, console)

    def progress(index: int, case: Case, seconds: float, records: list[dict]) -> None:
        print_note(console, f"[{index + 1}/{len(cases)}] {case.label}  {seconds:.1f} s  "
                            f"(total {time.perf_counter() - started:.0f} s)")
        _write_results(args.out, meta, records, copy={"start": start_bw, "end": None},
                       elapsed_s=time.perf_counter() - started, complete=False)

    from bench.runner import run_all

    deadline = None if args.time_limit_s is None else started + args.time_limit_s
    records, not_run = run_all(cases, args.impls, args.passes, plan, static=static, predict_gbps=args.h100_gbps,
                               seed=args.seed, omitted=left_out, on_case=progress, deadline=deadline)
    meta["not_run"] = [{"case": label, "reason": f"--time-limit-s {args.time_limit_s:g} reached"} for label in not_run]
    for item in meta["not_run"]:
        print_note(console, f"not run: {item['case']} ({item['reason']})")
    end_bw = copy_bandwidth(device, plan.copy_bytes)
    meta["static_report"] = None if static is None else {k: static[k] for k in ("available", "reason", "archs", "hidden_sizes")}
    meta["load_average_end"] = environment.machine(device)["load_average"]
    _write_results(args.out, meta, records, copy={"start": start_bw, "end": end_bw},
                   elapsed_s=time.perf_counter() - started, complete=True)
    plots = []
    if plotting:
        from bench.plots import write_plots  # matplotlib

        plots = write_plots(meta, records, args.out)
    print_table(meta, records, console)
    if args.markdown:
        text = markdown(meta, records)
        (args.out / "results.md").write_text(text)
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    print_note(console, f"wrote {args.out / 'results.json'}{''.join(', ' + p.name for p in plots)} in {meta['elapsed_s']:.0f} s")
    return 0
