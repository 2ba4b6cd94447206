"""`python -m bench.gpu_check --out DIR [--dry-run]`: every GPU check and figure adajudge owes, in one command
and at most 8 minutes.

On a machine with one CUDA GPU and the project installed (`pip install --no-deps --no-build-isolation -e .`):

1. `tests`: `python -m adajudge.selftest` (every op × backend × dtype × layout against the reference, and
   `torch.library.opcheck`), then the op, kernel and head test files with the compiled kernels (pytest,
   pytest-xdist if there).
2. `torch_compile`: Inductor, `fullgraph=True`, of pooling + focal NormBT loss (padded, and packed with
   `max_seqlen`) and of `AdaJudgeHead`, against eager, and checked to make no copy of `hidden`.
3. `cuda_graphs`: capture and replay of every op, forward and backward, equal to eager.
4. `head_memory`: `AdaJudgeHead` peak memory on bf16 `hidden`, pooled in bf16 vs upcast first.
5. `bench`: `python -m bench --preset pooling` and `--quick`, once per pooling forward variant
   (`$ADAJUDGE_POOL_FORWARD`), GB/s against the GPU's copy bandwidth measured in the same run.
6. `gpu_model`: the static model's predicted time beside every adajudge row step 5 measured
   (`python -m bench.gpu_model --compare`, on this GPU's SM count and measured copy bandwidth).

Writes `DIR/gpu_check.json` (keys `device`, `dry_run`, `tests`, `torch_compile`, `cuda_graphs`,
`head_memory`, `bench`, `gpu_model`, `seconds`, `ok`, versions, packages, skipped steps with reasons), rewritten after
every step; `DIR/gpu_check.md`, a summary; `DIR/gpu_check.log`, every child process's output; and
`DIR/runs/`, per-run files (bench results and plots). The JSON holds every figure: it is the one file to
keep.

Time: `--budget-s` (default 480 on a GPU) is split over the steps in proportion to
`bench.gpu.steps.SHARES_S`; a step that ends early leaves its time to the later ones. Every step runs in
child processes killed at its limit (reported as `timed_out`, with what they finished). `--dry-run` runs
every step at toy sizes on the CPU (Triton interpreter, CUDA hidden) and writes the same report with
`"dry_run": true`; its default budget is 900 s, since Inductor compiling C++ on a 2-core CPU with a cold
cache takes minutes (about 3 minutes in all with a warm cache, 5 with a cold one, on this project's CI
machine).

Exit status: 0 when every step is "ok" or "skipped" (with its reason), 1 otherwise.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import torch

from bench import environment
from bench.gpu.steps import SHARES_S, STEPS, Context
from bench.gpu.summary import markdown

BUDGET_S = 480.0
DRY_RUN_BUDGET_S = 900.0
WRITE_RESERVE_S = 5.0  # kept back from the steps for writing the report
MIN_STEP_S = 10.0
PACKAGES = ("transformers", "triton", "hypothesis", "pytest", "pytest-xdist", "pytest-timeout", "rich", "matplotlib",
            "safetensors", "trl", "peft", "accelerate", "datasets", "flash-attn")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--dry-run", action="store_true", help="every step at toy sizes on the CPU (no GPU needed)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help=f"total seconds for the steps (default {BUDGET_S:g}; {DRY_RUN_BUDGET_S:g} with --dry-run)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)} (default: all)")
    return parser


def _packages() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _nvidia_smi() -> str | None:
    query = ["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm,clocks.max.memory", "--format=csv,noheader"]
    try:
        done = subprocess.run(query, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def _device(dry_run: bool) -> dict:
    host = environment.description(torch.device("cpu"))
    if dry_run:
        return {"type": "cpu", "name": host, "note": "dry run: toy sizes on the CPU; no GPU figure in this report"}
    props = torch.cuda.get_device_properties(0)
    return {
        "type": "cuda", "name": props.name, "capability": f"sm_{props.major}{props.minor}",
        "memory_bytes": props.total_memory, "multiprocessors": props.multi_processor_count,
        "l2_cache_bytes": getattr(props, "L2_cache_size", None), "count": torch.cuda.device_count(),
        "driver_and_max_clocks": _nvidia_smi(), "host": host,
    }


def _child_env(dry_run: bool) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if dry_run:
        env.update(TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="")
    else:
        env.pop("TRITON_INTERPRET", None)  # the compiled kernels, not the interpreter
    return env


def _write(out: Path, report: dict) -> None:
    partial = out / "gpu_check.json.partial"
    partial.write_text(json.dumps(report, indent=1) + "\n")
    os.replace(partial, out / "gpu_check.json")


def _run_step(name: str, ctx: Context, limit_s: float) -> dict:
    started = time.perf_counter()
    try:
        result = STEPS[name](ctx, limit_s)
    except Exception as error:  # a bug in one step must not lose the others' results
        result = {"status": "failed", "reason": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-3000:]}
    return {**result, "seconds": time.perf_counter() - started, "limit_s": limit_s}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    selected = [step.strip() for step in args.steps.split(",") if step.strip()]
    if not selected or any(step not in STEPS for step in selected):
        raise SystemExit(f"--steps: expected a comma-separated subset of {','.join(STEPS)}, got {args.steps!r}")
    if args.budget_s is None:
        args.budget_s = DRY_RUN_BUDGET_S if args.dry_run else BUDGET_S
    if not args.budget_s > 0:
        raise SystemExit(f"--budget-s: expected seconds > 0, got {args.budget_s}")
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("expected a CUDA device (torch.cuda.is_available() is False); "
                         "run with --dry-run on a machine without one")
    started = time.perf_counter()
    runs = args.out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    log = args.out / "gpu_check.log"
    log.write_text("")
    ctx = Context(out=args.out, runs=runs, log=log, repo=environment.REPO, dry_run=args.dry_run, env=_child_env(args.dry_run),
                  parallel=max(1, min(4, (os.cpu_count() or 1) // (1 if args.dry_run else 4))))
    report = {
        "schema": "adajudge-gpu-check/1",
        "command": " ".join(["python -m bench.gpu_check", *argv]),
        "dry_run": args.dry_run,
        "ok": None,
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": _device(args.dry_run),
        "versions": environment.versions(),
        "packages": _packages(),
        "git": environment.git_state(),
        "budget_s": args.budget_s,
        "steps": list(STEPS),
        "seconds": {},
    }
    deadline = started + args.budget_s
    for name in STEPS:
        if name not in selected:
            report[name] = {"status": "skipped", "reason": "not selected (--steps)"}
            continue
        left = deadline - time.perf_counter() - WRITE_RESERVE_S
        limit = left * SHARES_S[name] / sum(SHARES_S[n] for n in selected[selected.index(name):])
        if limit < MIN_STEP_S:
            report[name] = {"status": "timed_out", "reason": f"only {max(0.0, limit):.0f} s of the budget left for it"}
            continue
        print(f"[gpu_check] {name}: up to {limit:.0f} s", flush=True)
        report[name] = _run_step(name, ctx, limit)
        report["seconds"][name] = report[name]["seconds"]
        print(f"[gpu_check] {name}: {report[name]['status']} in {report[name]['seconds']:.0f} s"
              + (f" ({report[name]['reason'][:300]})" if report[name].get("reason") else ""), flush=True)
        _write(args.out, report)
    report["seconds"]["total"] = time.perf_counter() - started
    report["skipped"] = [{"step": name, "reason": report[name]["reason"]}
                         for name in STEPS if report[name]["status"] == "skipped"]
    report["ok"] = all(report[name]["status"] in ("ok", "skipped") for name in STEPS)
    _write(args.out, report)
    summary = markdown(report)
    (args.out / "gpu_check.md").write_text(summary)
    print(summary, flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
