"""Ahead-of-time compile of every adajudge kernel for sm_80 and sm_90, with no GPU (DESIGN.md §10).

`python -m adajudge.kernels.compile_check` builds each kernel with the block sizes its launcher would pick,
at hidden sizes 576 … 8192 in fp32/bf16/fp16, reads the cubin's registers, stack and shared memory with the
`cuobjdump` shipped in Triton's wheel, counts local-memory spill instructions (`LDL`/`STL`) in its SASS,
prints one row per kernel × target × size × dtype and exits 1 on any failure or spill.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # pinned: fusion changes codegen and registers

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from adajudge.kernels import multiview_pool, preference_loss, router_mix  # noqa: E402
from adajudge.kernels.launch import NUM_STAGES, POOL_WARPS, SMALL_WARPS, token_tile  # noqa: E402

ARCHS = (80, 90)
HIDDEN_SIZES = (576, 896, 2048, 3584, 4096, 8192)
DTYPES = ("fp32", "bf16", "fp16")
ELEMENT_SIZE = {"fp32": 4, "bf16": 2, "fp16": 2}
CUDA_BIN = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"


def _kernel_specs(dim: int, dtype: str):
    """`(name, jit_fn, signature, constexprs, num_warps)` for every kernel, as the launchers configure them."""
    block_t, block_d = token_tile(dim, ELEMENT_SIZE[dtype])
    combine_block_d = min(triton.next_power_of_2(dim), 1024)
    h, i32, f32 = f"*{dtype}", "i32", "fp32"
    yield "multiview_pool_fwd", multiview_pool.multiview_pool_fwd_kernel, {
        "hidden": h, "kinds": "*i8", "attn_weight": h, "attn_bias": h, "cu_seqlens": "*i32",
        "scores": "*fp32", "partial_acc": "*fp32", "partial_stats": "*fp32",
        "T": i32, "D": i32, "chunk_len": i32, "num_splits": i32, "stride_hb": "i64", "stride_ht": "i64",
    }, {"HAS_BIAS": True, "IS_VARLEN": False, "BLOCK_T": block_t, "BLOCK_D": block_d}, POOL_WARPS
    yield "multiview_pool_combine", multiview_pool.multiview_pool_combine_kernel, {
        "hidden": h, "cu_seqlens": "*i32", "partial_acc": "*fp32", "partial_stats": "*fp32",
        "views": h, "z_attn": "*fp32", "lse": "*fp32", "counts": "*fp32", "last_index": "*i32",
        "D": i32, "num_splits": i32, "stride_hb": "i64", "stride_ht": "i64",
    }, {"IS_VARLEN": False, "BLOCK_D": combine_block_d}, POOL_WARPS
    yield "multiview_pool_bwd", multiview_pool.multiview_pool_bwd_kernel, {
        "hidden": h, "kinds": "*i8", "scores": "*fp32", "cu_seqlens": "*i32", "attn_weight": h,
        "grad_views": h, "z_attn": "*fp32", "lse": "*fp32", "counts": "*fp32", "last_index": "*i32",
        "d_hidden": h, "partial_dw": "*fp32", "partial_db": "*fp32",
        "T": i32, "D": i32, "chunk_len": i32, "num_splits": i32, "stride_hb": "i64", "stride_ht": "i64",
        "stride_gb": "i64", "stride_gv": "i64", "stride_gd": "i64",
    }, {"IS_VARLEN": False, "BLOCK_T": block_t, "BLOCK_D": block_d}, POOL_WARPS
    yield "router_mix_fwd", router_mix.router_mix_fwd_kernel, {
        "router_logits": h, "view_scores": h, "reward": "*fp32", "probs": "*fp32", "log_probs": "*fp32",
        "entropy": "*fp32", "B": i32, "V": i32, "inv_temperature": f32, "stride_ub": i32, "stride_sb": i32,
    }, {"BLOCK_B": router_mix.BLOCK_B, "BLOCK_V": 4}, SMALL_WARPS
    yield "router_mix_bwd", router_mix.router_mix_bwd_kernel, {
        "probs": "*fp32", "log_probs": "*fp32", "view_scores": h, "grad_reward": "*fp32", "grad_probs": "*fp32",
        "grad_entropy": "*fp32", "d_logits": "*fp32", "d_scores": "*fp32",
        "B": i32, "V": i32, "inv_temperature": f32, "stride_sb": i32,
    }, {"BLOCK_B": router_mix.BLOCK_B, "BLOCK_V": 4}, SMALL_WARPS
    for batch_mean in (False, True):
        yield f"preference_loss_fwd{'_batch_mean' if batch_mean else ''}", preference_loss.preference_loss_fwd_kernel, {
            "chosen": h, "rejected": h, "margin": h, "weights": h, "chosen_repr": h, "rejected_repr": h,
            "norm_scale": "*fp32", "loss": "*fp32", "d_delta": "*fp32", "d_center": "*fp32", "unweighted": "*fp32",
            "distance": "*fp32", "N": i32, "D": i32, "inv_temperature": f32, "gamma": f32, "center_coef": f32,
            "eps": f32, "stride_c": i32, "stride_r": i32, "stride_m": i32, "stride_w": i32, "stride_cr": i32,
            "stride_rr": i32,
        }, {"HAS_MARGIN": True, "HAS_WEIGHTS": True, "HAS_REPR": True, "BATCH_MEAN_SCALE": batch_mean,
            "BLOCK_N": preference_loss.BLOCK_N, "BLOCK_D": preference_loss.BLOCK_D}, SMALL_WARPS


def _resource_usage(cubin: bytes) -> dict:
    """Registers, stack, shared memory and spill instructions of a cubin, read by cuobjdump."""
    with tempfile.NamedTemporaryFile(suffix=".cubin") as file:
        file.write(cubin)
        file.flush()
        usage = subprocess.run([CUDA_BIN / "cuobjdump", "-res-usage", file.name], capture_output=True, text=True, check=True).stdout
        sass = subprocess.run([CUDA_BIN / "cuobjdump", "-sass", file.name], capture_output=True, text=True, check=True).stdout
    field = lambda name: int(re.search(rf"{name}:(\d+)", usage).group(1))
    return {
        "registers": field("REG"),
        "stack_bytes": field("STACK"),
        "shared_bytes": field("SHARED"),
        "spills": len(re.findall(r"\b(?:LDL|STL)\b", sass)),
    }


def _build(fn, signature, constexprs, target, num_warps) -> dict:
    try:
        full_signature = {**signature, **{key: "constexpr" for key in constexprs}}
        source = ASTSource(fn, full_signature, constexprs)
        compiled = triton.compile(source, target=target, options={"num_warps": num_warps, "num_stages": NUM_STAGES})
        usage = _resource_usage(compiled.asm["cubin"])
        return usage | {"ok": usage["spills"] == 0 and usage["stack_bytes"] == 0, "error": ""}
    except Exception as error:  # a failed build is a reported row, not a crash of the check
        return {"registers": None, "stack_bytes": None, "shared_bytes": None, "spills": None,
                "ok": False, "error": f"{type(error).__name__}: {error}".splitlines()[0][:200]}


def compile_rows(archs=ARCHS, hidden_sizes=HIDDEN_SIZES, dtypes=DTYPES, kernels=None) -> list[dict]:
    """Compile every kernel (or those named in `kernels`) for every (arch, hidden size, dtype).

    Keys: kernel, arch, hidden_size, dtype, registers, stack_bytes, shared_bytes, spills, ok, error.
    `ok` is False when the build failed or spilled. Identical builds (the same kernel, target, dtype and
    constexprs at two hidden sizes) are compiled once and reported for each size.
    """
    rows, builds = [], {}
    for arch in archs:
        target = GPUTarget("cuda", arch, 32)
        for dim in hidden_sizes:
            for dtype in dtypes:
                for name, fn, signature, constexprs, num_warps in _kernel_specs(dim, dtype):
                    if kernels is not None and name not in kernels:
                        continue
                    key = (name, arch, dtype, num_warps, tuple(sorted(constexprs.items())))
                    if key not in builds:
                        builds[key] = _build(fn, signature, constexprs, target, num_warps)
                    rows.append({"kernel": name, "arch": f"sm_{arch}", "hidden_size": dim, "dtype": dtype, **builds[key]})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, nargs="+", default=list(ARCHS))
    parser.add_argument("--hidden-size", type=int, nargs="+", default=list(HIDDEN_SIZES))
    parser.add_argument("--dtype", nargs="+", default=list(DTYPES), choices=DTYPES)
    parser.add_argument("--kernel", nargs="+", default=None, help="only these kernels (names as printed)")
    args = parser.parse_args(argv)
    rows = compile_rows(args.arch, args.hidden_size, args.dtype, args.kernel)
    header = f"{'kernel':32s} {'arch':6s} {'D':>5s} {'dtype':5s} {'regs':>4s} {'stack':>5s} {'smem':>6s} {'spills':>6s}  status"
    print(header)
    for row in rows:
        cells = [str(row[key]) if row[key] is not None else "-" for key in ("registers", "stack_bytes", "shared_bytes", "spills")]
        status = "ok" if row["ok"] else f"FAIL {row['error']}"
        print(f"{row['kernel']:32s} {row['arch']:6s} {row['hidden_size']:5d} {row['dtype']:5s} {cells[0]:>4s} {cells[1]:>5s} {cells[2]:>6s} {cells[3]:>6s}  {status}")
    failures = sum(not row["ok"] for row in rows)
    print(f"{len(rows)} builds, {failures} failed or spilled")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
