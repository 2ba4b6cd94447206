"""Ahead-of-time build of every kernel variant the launchers produce, for sm_80 and sm_90, with no GPU
(docs/design.md §10), plus what `torch.compile`'s Inductor believes each kernel writes.

`python -m adajudge.kernels.compile_check` runs every launcher of the library on CPU tensors with launches
recorded and not executed (`launch.record_launches(execute=False)`): padded and packed (int32 and int64
`cu_seqlens`) pooling, with and without bias, both forward variants (fused, two_phase), the backward, the
router mix, and the preference loss in each of its NormBT modes with margin and weights. Each recorded
launch is then built by Triton's own `JITFunction.warmup` against a stand-in driver whose target is the
requested GPU architecture, so the build carries exactly the runtime's specialisations (16-byte alignment,
divisibility by 16, the constexprs and warps the launcher chose). For each build it reads the cubin's
registers, stack and shared memory with the `cuobjdump` shipped in Triton's wheel, counts local-memory
spill instructions (`LDL`/`STL`) in its SASS, and runs Inductor's TTIR mutation analysis
(`torch._higher_order_ops.triton_kernel_wrap`: `identify_accessed_tensors`, or `identify_mutated_tensors` on
torch 2.11, which has only that one) to list the caller's tensors the kernel is believed to write. A row fails
on a build error, a spill, stack use, or a write to any tensor the caller passed in. Exit status 1 on any
failure. `--allow-spills` reports spills and stack use (status "SPILLS") without failing on them, for a
Triton whose spills are known and tracked (CI's floor environment, Triton 3.6: docs/kernels.md); build
errors and writes still fail.

The builds run in a process without `TRITON_INTERPRET` (the interpreter replaces the kernels with
Python): `compile_rows` starts one when called from a process that has it on.
"""
import argparse
import json
import os
import subprocess
import sys

import torch
from torch._higher_order_ops import triton_kernel_wrap

from .aot import ahead_of_time, build, resource_usage
from .launch import record_launches
from .pool_forward import FORWARD_VARIANT_ENV, FORWARD_VARIANTS

ARCHS = (80, 90)
HIDDEN_SIZES = (576, 896, 2048, 3584, 4096, 8192)
DTYPES = ("fp32", "bf16", "fp16")
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# The shapes the launchers are run at: small, since only block sizes, warps and specialisations matter.
ROWS, TOKENS, PAIRS = 3, 37, 70
PACKED_LENGTHS = (5, 0, 12, 20)


def _pooling_launches(dim: int, dtype: torch.dtype):
    """`(variant, launches, caller_tensors)` for every pooling forward and backward configuration."""
    from . import multiview_pool as pool

    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(dim, generator=gen).to(dtype)
    bias = torch.randn((), generator=gen).to(dtype)
    layouts = {"padded": (torch.randn(ROWS, TOKENS, dim, generator=gen).to(dtype), None, 0)}
    for index_dtype in (torch.int32, torch.int64):
        cu = torch.tensor([0, *torch.tensor(PACKED_LENGTHS).cumsum(0).tolist()], dtype=index_dtype)
        hidden = torch.randn(int(cu[-1]), dim, generator=gen).to(dtype)
        layouts[f"packed_{str(index_dtype).removeprefix('torch.')}"] = (hidden, cu, max(PACKED_LENGTHS))
    for layout, (hidden, cu, max_seqlen) in layouts.items():
        kinds = torch.randint(0, 3, hidden.shape[:-1], generator=gen, dtype=pool.KINDS_DTYPE)
        for variant in FORWARD_VARIANTS:
            for attn_bias in (bias, None):
                inputs = (hidden, kinds, weight, attn_bias, cu)
                os.environ[FORWARD_VARIANT_ENV] = variant
                try:
                    with record_launches(execute=False) as launches:
                        outputs = pool.multiview_pool_fwd(*inputs, max_seqlen)
                finally:
                    os.environ.pop(FORWARD_VARIANT_ENV)
                name = f"{layout}/{variant}/{'bias' if attn_bias is not None else 'no_bias'}"
                yield f"fwd {name}", launches, inputs
        views, scores, z_attn, lse, counts, last_index = outputs
        grad = torch.randn(views.shape, generator=gen).to(dtype)
        inputs = (grad, hidden, kinds, scores, cu, weight, z_attn, lse, counts, last_index)
        for write_d_hidden in (True, False):
            with record_launches(execute=False) as launches:
                pool.multiview_pool_bwd(*inputs, max_seqlen, write_d_hidden)
            yield f"bwd {layout}{'' if write_d_hidden else '/frozen_hidden'}", launches, inputs


def _router_launches(dtype: torch.dtype):
    from . import router_mix

    gen = torch.Generator().manual_seed(1)
    logits, scores = (torch.randn(ROWS * 7, 3, generator=gen).to(dtype) for _ in range(2))
    with record_launches(execute=False) as launches:
        reward, probs, entropy, log_probs = router_mix.router_mix_fwd(logits, scores, 1.0)
    yield "fwd", launches, (logits, scores)
    inputs = (reward, probs, entropy, probs, log_probs, scores)
    with record_launches(execute=False) as launches:
        router_mix.router_mix_bwd(*inputs, 1.0)
    yield "bwd", launches, inputs


def _loss_launches(dim: int, dtype: torch.dtype):
    from . import preference_loss

    gen = torch.Generator().manual_seed(2)
    rewards = [torch.randn(PAIRS, generator=gen).to(dtype) for _ in range(4)]  # chosen, rejected, margin, weights
    reprs = [torch.randn(PAIRS, dim, generator=gen).to(dtype) for _ in range(2)]
    scale = torch.tensor(1.5)
    modes = {"bt": (None, None, None, None), "normbt_scalar": (*reprs, None, 1.5),
             "normbt_tensor": (*reprs, scale, None), "normbt_batch_mean": (*reprs, None, None)}
    for mode, (chosen_repr, rejected_repr, norm_scale, norm_value) in modes.items():
        inputs = (*rewards, chosen_repr, rejected_repr, norm_scale)
        with record_launches(execute=False) as launches:
            preference_loss.preference_loss_fwd(*inputs, norm_value, 1.0, 2.0, 0.01, 1e-6)
        yield f"fwd {mode}", launches, tuple(t for t in inputs if t is not None)


def runtime_launches(dim: int, dtype_name: str):
    """`(op, variant, launch, caller_tensors)` for every kernel launch of every op configuration at `dim`."""
    dtype = TORCH_DTYPES[dtype_name]
    for op, variants in (
        ("multiview_pool", _pooling_launches(dim, dtype)),
        ("router_mix", _router_launches(dtype)),
        ("preference_loss", _loss_launches(dim, dtype)),
    ):
        for variant, launches, caller_tensors in variants:
            for launch in launches:
                yield op, variant, launch, caller_tensors


def tensors_written(kernel, arguments: dict) -> set[str]:
    """Names of the tensor arguments that Inductor's TTIR analysis believes `kernel` writes (every tensor when
    the analysis fails). torch 2.11 has `identify_mutated_tensors` (the names written); later versions replace
    it with `identify_accessed_tensors` (reads and writes as Inductor dependencies)."""
    if hasattr(triton_kernel_wrap, "identify_accessed_tensors"):
        accesses = triton_kernel_wrap.identify_accessed_tensors(kernel, arguments, {})
        return {dep.name for dep in accesses.read_writes.writes}
    return set(triton_kernel_wrap.identify_mutated_tensors(kernel, arguments, {}))


def _inputs_written(launch, caller_tensors) -> list[str]:
    """Names of the kernel arguments that are tensors the caller passed in and that Inductor's TTIR
    analysis believes the kernel writes."""
    written = tensors_written(launch.kernel, dict(launch.arguments))
    return sorted(
        name for name in written
        if any(launch.arguments[name] is tensor for tensor in caller_tensors)
    )


def _build(launch, variant: str, dtype: str, caller_tensors, cache: dict) -> dict:
    """One row's measurements. `cache` keeps each distinct build's resource use and each (kernel, variant,
    dtype)'s mutation analysis (the TTIR's stores do not depend on the architecture or the hidden size)."""
    try:
        compiled = build(launch)
        if id(compiled) not in cache:
            cache[id(compiled)] = (compiled, resource_usage(compiled.asm["cubin"]))
        usage = cache[id(compiled)][1]
        if (launch.name, variant, dtype) not in cache:
            cache[launch.name, variant, dtype] = _inputs_written(launch, caller_tensors)
        inputs_written = cache[launch.name, variant, dtype]
        ok = usage["spills"] == 0 and usage["stack_bytes"] == 0 and not inputs_written
        return usage | {"build": compiled.hash[:16], "inputs_written": inputs_written, "ok": ok, "error": ""}
    except Exception as error:  # a failed build is a reported row, not a crash of the check
        return {"registers": None, "stack_bytes": None, "shared_bytes": None, "spills": None, "build": None,
                "inputs_written": None, "ok": False, "error": f"{type(error).__name__}: {error}".splitlines()[0][:200]}


def input_writes(hidden_size: int, dtypes=DTYPES) -> list[dict]:
    """Inductor's mutation analysis alone (no cubin), for every recorded launch at `hidden_size`: rows with
    kernel, op, variant, dtype and `inputs_written` (the caller's tensors it is believed to write)."""
    rows, seen = [], set()
    with ahead_of_time(ARCHS[-1]):
        for dtype in dtypes:
            for op, variant, launch, caller_tensors in runtime_launches(hidden_size, dtype):
                if (launch.name, variant, dtype) not in seen:
                    seen.add((launch.name, variant, dtype))
                    rows.append({"kernel": launch.name, "op": op, "variant": variant, "dtype": dtype,
                                 "inputs_written": _inputs_written(launch, caller_tensors)})
    return rows


def _compile_rows_here(archs, hidden_sizes, dtypes, kernels) -> list[dict]:
    rows, cache = [], {}
    for arch in archs:
        with ahead_of_time(arch):
            for dim in hidden_sizes:
                for dtype in dtypes:
                    for op, variant, launch, caller_tensors in runtime_launches(dim, dtype):
                        if kernels is not None and launch.name not in kernels:
                            continue
                        rows.append({"kernel": launch.name, "op": op, "variant": variant, "arch": f"sm_{arch}",
                                     "hidden_size": dim, "dtype": dtype, **_build(launch, variant, dtype, caller_tensors, cache)})
    return rows


def compile_rows(archs=ARCHS, hidden_sizes=HIDDEN_SIZES, dtypes=DTYPES, kernels=None) -> list[dict]:
    """Build every recorded launch for every (arch, hidden size, dtype).

    Keys: kernel, op, variant, arch, hidden_size, dtype, registers, stack_bytes, shared_bytes, spills,
    build (the compiled kernel's hash), inputs_written, ok, error. Identical builds are compiled once (Triton's cache)
    and reported per launch.
    """
    if os.environ.get("TRITON_INTERPRET", "0") != "1":
        return _compile_rows_here(archs, hidden_sizes, dtypes, kernels)
    command = [sys.executable, "-m", "adajudge.kernels.compile_check", "--json",
               "--arch", *map(str, archs), "--hidden-size", *map(str, hidden_sizes), "--dtype", *dtypes]
    if kernels is not None:
        command += ["--kernel", *kernels]
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if not done.stdout.strip():
        raise RuntimeError(f"compile check subprocess failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, nargs="+", default=list(ARCHS))
    parser.add_argument("--hidden-size", type=int, nargs="+", default=list(HIDDEN_SIZES))
    parser.add_argument("--dtype", nargs="+", default=list(DTYPES), choices=DTYPES)
    parser.add_argument("--kernel", nargs="+", default=None, help="only these kernels (names as printed)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--allow-spills", action="store_true",
                        help="report spills and stack use without failing on them (build errors and writes still fail)")
    parser.add_argument("--writes-only", action="store_true",
                        help="only Inductor's mutation analysis, at the first --hidden-size, as JSON")
    args = parser.parse_args(argv)
    if args.writes_only:
        rows = input_writes(args.hidden_size[0], args.dtype)
        print(json.dumps(rows))
        return 1 if any(row["inputs_written"] for row in rows) else 0
    rows = compile_rows(args.arch, args.hidden_size, args.dtype, args.kernel)
    spilled = [row for row in rows if not row["ok"] and not row["error"] and not row["inputs_written"]]
    failures = sum(not row["ok"] for row in rows) - (len(spilled) if args.allow_spills else 0)
    if args.json:
        print(json.dumps(rows))
        return 1 if failures else 0
    print(f"{'kernel':34s} {'variant':34s} {'arch':6s} {'D':>5s} {'dtype':5s} "
          f"{'regs':>4s} {'stack':>5s} {'smem':>6s} {'spills':>6s}  status")
    for row in rows:
        cells = [str(row[key]) if row[key] is not None else "-" for key in ("registers", "stack_bytes", "shared_bytes", "spills")]
        if row["ok"]:
            status = "ok"
        elif args.allow_spills and row in spilled:
            status = "SPILLS (allowed by --allow-spills)"
        elif row["error"]:
            status = f"FAIL {row['error']}"
        else:
            status = f"FAIL spills/stack, or writes caller tensors {row['inputs_written']}"
        print(f"{row['kernel']:34s} {row['variant']:34s} {row['arch']:6s} {row['hidden_size']:5d} {row['dtype']:5s} "
              f"{cells[0]:>4s} {cells[1]:>5s} {cells[2]:>6s} {cells[3]:>6s}  {status}")
    unique = len({row["build"] for row in rows if row["build"]})
    print(f"{len(rows)} launches checked ({unique} distinct builds), {failures} failed, spilled or write their inputs"
          + (f"; {len(spilled)} spill or use stack (allowed by --allow-spills)" if args.allow_spills else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
