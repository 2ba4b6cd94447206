"""`python -m bench.gpu_model [--json PATH] [--results-md bench/RESULTS.md --label LABEL]`: the static GPU
model's table, every figure **predicted**, none measured (docs/gpu_model.md).

    python -m bench.gpu_model                                   # every kernel, preset shape, dtype, layout; H100 and H200
    python -m bench.gpu_model --json gpu-model.json             # also one record per kernel × shape × dtype × layout × GPU
    python -m bench.gpu_model --results-md bench/RESULTS.md --label after   # tables into RESULTS.md, plot in docs/
    python -m bench.gpu_model --quick                           # one pooling shape, bf16: the CI smoke run

Builds run for sm_90 with no GPU (Triton's cache and a disassembly cache make a second run fast).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

from bench import environment
from bench.gpu_model import calibration_records, records
from bench.gpu_model.gpus import GPUS
from bench.gpu_model.report import PREDICTED, plot, section_body, targets, text_table, write_section
from bench.gpu_model.workloads import DEFAULT_DTYPES, DTYPES, LAYOUTS, POOL_SHAPES

OPS = ("multiview_pool", "router_mix", "preference_loss")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_model", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the records (a JSON list) to this file")
    parser.add_argument("--gpu", nargs="+", choices=tuple(GPUS), default=list(GPUS))
    parser.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    parser.add_argument("--dtype", nargs="+", choices=tuple(DTYPES), default=list(DEFAULT_DTYPES))
    parser.add_argument("--layout", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    parser.add_argument("--quick", action="store_true", help="pooling at B16 T2048 D4096 in bf16, plus the calibration")
    parser.add_argument("--results-md", type=Path, default=None,
                        help="write the pass and kernel tables and a plot into this file's model section")
    parser.add_argument("--label", default="current", help="the subsection of --results-md to write (default: current)")
    parser.add_argument("--compare", type=Path, nargs="+", default=None, metavar="RESULTS_JSON",
                        help="instead: predict every adajudge row of these GPU `python -m bench` results, beside the "
                             "measured time (with --multiprocessors and --device-name; what bench.gpu_check runs)")
    parser.add_argument("--multiprocessors", type=int, default=132, help="SMs of the GPU that measured --compare's files")
    parser.add_argument("--device-name", default="GPU", help="name of the GPU that measured --compare's files")
    parser.add_argument("--arch", type=int, default=90, help="compute capability to build --compare's kernels for (90: sm_90)")
    return parser


def _compare(args) -> int:
    from bench.gpu_model.compare import compare_files

    rows = compare_files(args.compare, args.multiprocessors, args.device_name, args.arch)
    print(f"{'op':15s} {'variant':7s} {'shape':26s} {'pass':8s} {'dtype':5s} {'forward':9s} {'measured µs':>11s} "
          f"{'predicted µs':>12s} {'pred/meas':>9s}  limiter (predicted)")
    for r in rows:
        shape = " ".join(f"{k}{v}" for k, v in r["shape"].items())
        print(f"{r['op']:15s} {r['variant'] or '–':7s} {shape:26s} {r['pass']:8s} {r['dtype']:5s} {r['pool_forward'] or '–':9s} "
              f"{r['measured_us']:11.1f} {r['predicted_us']:12.1f} {r['predicted_over_measured']:9.2f}  {r['limiter']}")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.compare:
        return _compare(args)
    started = time.perf_counter()
    ops, dtypes, shapes = args.ops, args.dtype, POOL_SHAPES
    if args.quick:
        ops, dtypes, shapes = ["multiview_pool"], ["bf16"], POOL_SHAPES[:1]
    anchors = calibration_records(args.gpu)
    found = records(args.gpu, ops=tuple(ops), dtypes=tuple(dtypes), pool_shapes=shapes, layouts=tuple(args.layout),
                    on_pass=lambda p: print(f"[{time.perf_counter() - started:5.0f} s] {p.op} {p.pass_} {p.variant} "
                                            f"{p.shape_label} {p.dtype} {p.layout}", file=sys.stderr, flush=True))
    seconds = time.perf_counter() - started
    print(f"All figures {PREDICTED.replace('**', '')}.\n")
    print(text_table(anchors + found))
    goals = targets(found)
    print("\n" + "\n".join(goals))
    print(f"\n{len(found)} records in {seconds:.0f} s (Triton {environment.versions()['triton']})")
    if args.json is not None:
        args.json.write_text(json.dumps(anchors + found, indent=1) + "\n")
    if args.results_md is not None:
        git = environment.git_state()
        slug = re.sub(r"[^A-Za-z0-9]+", "_", args.label).strip("_").lower()
        image = environment.REPO / "docs" / f"gpu_model_{slug}.png"  # docs/*.png are the images git keeps
        plot(found, image, f"multiview_pool, {args.label}")
        command = shlex.join(["python", "-m", "bench.gpu_model", *(argv if argv is not None else sys.argv[1:])])
        where = f"commit {(git['commit'] or 'none')[:12]}{' with uncommitted changes' if git['dirty'] else ''}, " \
                f"Triton {environment.versions()['triton']}, {seconds:.0f} s on this machine"
        body = section_body(command, where, anchors, found, args.gpu, os.path.relpath(image, args.results_md.resolve().parent))
        write_section(args.results_md, args.label, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
