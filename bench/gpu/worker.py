"""One in-process step of `python -m bench.gpu_check`, run in its own process so that the check can kill
it at its time limit and a crash (a CUDA error, a compiler hang) stays inside it.

    python -m bench.gpu.worker torch_compile --check pool_loss_padded --result FILE [--dry-run]
    python -m bench.gpu.worker cuda_graphs --result FILE [--dry-run]
    python -m bench.gpu.worker head_memory --result FILE [--dry-run]

Writes its JSON result to FILE, rewritten after every finished item, so a process killed at its limit
leaves the items it finished. `--dry-run` runs on the CPU (no CUDA).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

STEPS = ("torch_compile", "cuda_graphs", "head_memory")


def write_result(path: Path, result: dict) -> None:
    """Replace `path` atomically with `result` as JSON."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(partial, path)


def _device(dry_run: bool) -> torch.device:
    if dry_run:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit("expected a CUDA device (torch.cuda.is_available() is False); use --dry-run without one")
    return torch.device("cuda")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.worker", description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--check", default=None, help="torch_compile: the one check to run")
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    device = _device(args.dry_run)
    if args.step == "torch_compile":
        from bench.gpu.compile_checks import run_check

        write_result(args.result, run_check(args.check, device))
    elif args.step == "cuda_graphs":
        from bench.gpu.cudagraph_checks import PASSES, cases, run_case

        results = []
        for op, variant in cases(device):
            for pass_ in PASSES:
                results.append(run_case(op, variant, pass_, device))
                write_result(args.result, {"cases": results})
    else:
        from bench.head_memory import TINY_SHAPE, run

        write_result(args.result, run(device, shape=TINY_SHAPE if args.dry_run else None, rounds=3 if args.dry_run else 5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
