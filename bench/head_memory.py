"""`AdaJudgeHead` on a bf16 backbone's hidden states: peak memory and time of the head pooling `hidden` in
bf16, against upcasting it to fp32 first, in one run.

    python -m bench.head_memory --out bench-results            # CPU
    python -m bench.head_memory --device cuda --out bench-results

The head's parameters are fp32 (a head trained in fp32 on a bf16 backbone). Two calls of the same head on
the same bf16 `hidden [B, T, D]`:

- `bf16`: `head(hidden, ...)`, what the head does.
- `upcast`: `head(hidden.float(), ...)`, the cast inside the measured call: what a head that casts the
  whole `[B, T, D]` to its parameter dtype before pooling does (adajudge did, before issue 9). The fp32
  copy is `2×` the bytes of `hidden`; pooling saves its input for the backward, so the copy lives until then.

Three modes: `score` (a forward under `torch.no_grad()`, as when scoring a benchmark), `train_head` (a
training step of the head on a frozen backbone: forward + backward, gradients to the head only) and
`train_all` (`hidden` requires grad, as when the backbone is trained too: the backward also writes
`dhidden`). Each with `num_blocks=0` (no refinement: pooling reads the backbone's states directly) and
`num_blocks=1` (the refinement's matmuls need one dtype, so `hidden` becomes fp32 at the first block
either way, and the two calls should come out close). Sizes (`SHAPES`): without blocks, large enough that
the fp32 copy of `hidden` (256 MiB on CPU) is several times the slab in which the fused PyTorch path
upcasts bf16 (64 MiB, `adajudge.fused.multiview_pool`); while the fp32 copy fits in a slab or two, the CPU
path holds about as much fp32 as the upcast does and pooling in bf16 saves nothing there. With a block,
smaller (its matmuls dominate the time).

Peak memory is `bench.memory`'s (tensor bytes held at once above the live set before the call: the PyTorch
profiler's allocation events on CPU, the CUDA allocator's counters on CUDA); `peak_ratio` is
`bf16 / upcast` (below 1: pooling in bf16 saves memory). Times are interleaved medians (`bench.timing`).
`reward_max_abs_diff` compares the two calls' rewards: pooled views come out in `hidden`'s dtype, so the
`bf16` call's views are rounded to bf16 before the fp32 scorers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from bench.cases import padded_masks, random_head
from bench.memory import peak_memory
from bench.passes import PassRun, make_pass, reset_grads
from bench.timing import synchronize, time_cpu, time_cuda

MODES = ("score", "train_head", "train_all")
NUM_BLOCKS = (0, 1)
SHAPES = {  # (device type, num_blocks) -> shape
    ("cpu", 0): {"B": 16, "T": 2048, "D": 2048},
    ("cpu", 1): {"B": 4, "T": 256, "D": 512},
    ("cuda", 0): {"B": 16, "T": 2048, "D": 4096},
    ("cuda", 1): {"B": 8, "T": 1024, "D": 2048},
}
TINY_SHAPE = {"B": 2, "T": 64, "D": 64}


def _runs(head, hidden: torch.Tensor, attention: torch.Tensor, response: torch.Tensor, mode: str) -> dict[str, PassRun]:
    """The `bf16` and `upcast` calls of `mode`, as zero-argument runs with the leaves they fill."""
    params = list(head.parameters())
    leaf = hidden.detach().requires_grad_(mode == "train_all")
    calls = {
        "bf16": lambda: head(leaf, attention, response),
        "upcast": lambda: head(leaf.float(), attention, response),
    }
    if mode == "score":
        def scored(call):
            def run():
                with torch.no_grad():
                    return call()
            return run

        return {name: PassRun(scored(call), []) for name, call in calls.items()}
    leaves = [leaf, *params] if mode == "train_all" else params
    return {name: make_pass(call, leaves, "full") for name, call in calls.items()}


def compare(shape: dict, *, num_blocks: int, mode: str, device: torch.device, rounds: int = 5, seed: int = 0) -> dict:
    """One row: peak bytes and median ms of the `bf16` and `upcast` calls of `mode`, and their ratios."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    gen = torch.Generator(device=device).manual_seed(seed)
    b, t, d = shape["B"], shape["T"], shape["D"]
    hidden = torch.randn((b, t, d), generator=gen, device=device).to(torch.bfloat16)
    attention, response = padded_masks(b, t, device, gen)
    head = random_head(d, backend="auto", device=device, dtype=torch.float32, gen=gen, num_blocks=num_blocks)
    runs = _runs(head, hidden, attention, response, mode)
    with torch.no_grad():
        rewards = {"bf16": head(hidden, attention, response).reward, "upcast": head(hidden.float(), attention, response).reward}
    for run in runs.values():
        run.once()
    synchronize(device)
    peaks = {name: peak_memory(run, device) for name, run in runs.items()}
    if device.type == "cuda":
        timings = time_cuda(runs, rounds=rounds, rep_ms=50, cudagraph=False)
    else:
        timings = time_cpu(runs, rounds=rounds, min_sample_s=0.02)
    for run in runs.values():
        reset_grads(run.leaves)
    row = {"num_blocks": num_blocks, "mode": mode, "shape": dict(shape), "hidden_bytes": hidden.numel() * hidden.element_size()}
    for name in runs:
        row[name] = {"peak_memory_bytes": peaks[name][0], "median_ms": timings[name].median_ms, "spread": timings[name].spread()}
    row["peak_ratio"] = row["bf16"]["peak_memory_bytes"] / max(1, row["upcast"]["peak_memory_bytes"])
    row["time_ratio"] = row["bf16"]["median_ms"] / row["upcast"]["median_ms"]
    row["reward_max_abs_diff"] = float((rewards["bf16"] - rewards["upcast"]).abs().max())
    row["peak_memory_method"] = peaks["bf16"][1]
    return row


def run(device: torch.device, *, shape: dict | None = None, num_blocks=NUM_BLOCKS, rounds: int = 5) -> dict:
    """Every (num_blocks, mode) row, at `shape` or else at `SHAPES[(device.type, num_blocks)]`."""
    rows = [compare(dict(shape or SHAPES[device.type, k]), num_blocks=k, mode=mode, device=device, rounds=rounds)
            for k in num_blocks for mode in MODES]
    return {"device": device.type, "hidden_dtype": "bfloat16", "head_dtype": "float32", "rows": rows}


def markdown(result: dict) -> str:
    lines = [
        f"_`AdaJudgeHead` (fp32 parameters) on bf16 `hidden`, {result['device']}: pooled in bf16 vs upcast to fp32 first_  ",
        "",
        "| num_blocks | shape | mode | bf16 peak MiB | upcast peak MiB | peak ratio | bf16 ms | upcast ms | time ratio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def mib(row, name):
        return row[name]["peak_memory_bytes"] / 2**20

    for row in result["rows"]:
        shape = " ".join(f"{k}={v}" for k, v in row["shape"].items())
        lines.append(
            f"| {row['num_blocks']} | {shape} | {row['mode']} | {mib(row, 'bf16'):.2f} | {mib(row, 'upcast'):.2f} "
            f"| {row['peak_ratio']:.2f} | {row['bf16']['median_ms']:.2f} | {row['upcast']['median_ms']:.2f} "
            f"| {row['time_ratio']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.head_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="writes head_memory.json here")
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads (default 1, as python -m bench)")
    parser.add_argument("--shape", default=None, metavar="B,T,D", help="one shape for every row (default: SHAPES)")
    parser.add_argument("--num-blocks", type=int, choices=NUM_BLOCKS, nargs="+", default=list(NUM_BLOCKS),
                        help="refinement blocks of the rows (default: 0 1)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: expected a visible CUDA device, got none")
    if args.threads < 1:
        raise SystemExit(f"--threads: expected an integer >= 1, got {args.threads}")
    shape = None
    if args.shape is not None:
        sizes = args.shape.split(",")
        if len(sizes) != 3 or not all(size.isdigit() and int(size) > 0 for size in sizes):
            raise SystemExit(f"--shape: expected three positive integers B,T,D, got {args.shape!r}")
        shape = dict(zip("BTD", map(int, sizes)))
    torch.set_num_threads(args.threads)
    result = run(torch.device(args.device), shape=shape, num_blocks=tuple(args.num_blocks))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "head_memory.json").write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
