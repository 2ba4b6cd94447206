"""The Triton kernels' static compile report (registers, stack, shared memory, spills at sm_80/sm_90),
from `adajudge.kernels.compile_check.compile_rows`, which compiles the kernels to cubins with no GPU.

It describes the kernels `backend="auto"` runs on a GPU, whatever device the timings came from, and is
attached to the `adajudge` rows of the Triton ops (`bench.cases.TRITON_OPS`). When the compile check
cannot be imported or fails, the report says so (`available: false` and the reason), and the run goes on.
"""
from __future__ import annotations

import torch

from bench.cases import TRITON_OPS

ARCHS = (80, 90)

KERNEL_DTYPES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def static_report(hidden_sizes, dtypes) -> dict:
    """`{"available", "reason", "archs", "hidden_sizes", "rows"}`; `rows` are `compile_rows`'s dicts
    (kernel, arch, hidden_size, dtype, registers, stack_bytes, shared_bytes, spills, ok, error)."""
    hidden_sizes = sorted(set(hidden_sizes))
    base = {"archs": list(ARCHS), "hidden_sizes": hidden_sizes, "rows": []}
    try:
        from adajudge.kernels.compile_check import compile_rows
    except ImportError as error:
        return {**base, "available": False, "reason": f"adajudge.kernels.compile_check not importable: {error}"}
    try:
        names = tuple(KERNEL_DTYPES[dtype] for dtype in dtypes)
        rows = compile_rows(archs=ARCHS, hidden_sizes=tuple(hidden_sizes), dtypes=names)
    except Exception as error:  # a compile failure is a finding to report, not a reason to lose the run
        return {**base, "available": False, "reason": f"compile_rows raised {type(error).__name__}: {error}"}
    return {**base, "available": True, "reason": None, "rows": [dict(row) for row in rows]}


def _op_and_backward(row: dict) -> tuple[str | None, bool]:
    """The op a row belongs to and whether it is a backward launch: from its `op` and `variant` ("fwd ...",
    "bwd ...") when the compile check gives them, else from the kernel's name (`<op>_..._bwd...`)."""
    kernel = str(row["kernel"])
    if row.get("op") is not None and row.get("variant") is not None:
        return row["op"], str(row["variant"]).split(" ", 1)[0] == "bwd"
    return next((op for op in TRITON_OPS if kernel.startswith(op + "_")), None), "_bwd" in kernel


def rows_for(report: dict, op: str, pass_: str, hidden_size: int | None, dtype: torch.dtype) -> list[dict]:
    """The report's rows for the launches of `op` in `pass_` (forward, backward, or full: both), in
    `dtype`, at `hidden_size`; for an op without a hidden size, one row per (kernel, variant, arch): its
    kernels do not depend on it."""
    rows, seen = [], set()
    for row in report["rows"]:
        row_op, backward = _op_and_backward(row)
        if row_op != op or (pass_ == "forward" and backward) or (pass_ == "backward" and not backward):
            continue
        if row["dtype"] != KERNEL_DTYPES.get(dtype):
            continue
        if hidden_size is not None and row["hidden_size"] != hidden_size:
            continue
        key = (row["kernel"], row.get("variant"), row["arch"])
        if hidden_size is None and key in seen:
            continue
        seen.add(key)
        rows.append(row)
    return rows
