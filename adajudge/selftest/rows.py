"""The self-test's rows: one per op × backend × dtype × layout that the device supports, each run through
`adajudge.testing.check_layout` and, for the Triton backend, `torch.library.opcheck` on the custom ops that
row's case calls."""
import dataclasses
import functools
import math
import time
import traceback
from collections.abc import Callable

import torch

from adajudge import ops
from adajudge.ops.backend import triton_interpreter_enabled
from adajudge.testing.cases import OP_SPECS
from adajudge.testing.check import CheckFailure, check_layout

BACKENDS = ("triton", "torch", "reference")
KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # fp64 goes to the PyTorch path on every backend
NEEDS_A_TRITON_DEVICE = "needs CUDA or the interpreter"


@dataclasses.dataclass
class Row:
    """One row of the table and of the JSON: what ran and how it went. `worst_ratio` is the worst error
    divided by its bound over every case, output and gradient (≤ 1 passes); `opcheck` lists, for a Triton
    row, each custom-op call of its case with opcheck's verdict per test."""

    op: str
    backend: str
    dtype: torch.dtype
    layout: str
    status: str = "pending"  # then "passed", "failed" or "skipped"
    cases: int = 0
    worst_ratio: float | None = None
    opcheck: list[dict] | None = None
    reason: str | None = None
    seconds: float = 0.0

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def label(self) -> str:
        return f"{self.op} {self.backend} {self.dtype_name} {self.layout}"

    def record(self) -> dict:
        """The JSON record: `op, backend, dtype, layout, cases, worst_ratio, passed` (null when skipped), and
        `status, reason, opcheck, seconds`."""
        ratio = self.worst_ratio if self.worst_ratio is not None and math.isfinite(self.worst_ratio) else None
        return {"op": self.op, "backend": self.backend, "dtype": self.dtype_name, "layout": self.layout,
                "cases": self.cases, "worst_ratio": ratio,
                "passed": None if self.status == "skipped" else self.status == "passed",
                "status": self.status, "reason": self.reason, "opcheck": self.opcheck, "seconds": round(self.seconds, 3)}


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def skip_reason(backend: str, device: torch.device) -> str | None:
    """Why `backend` cannot run on `device` here, or None."""
    if backend != "triton":
        return None
    if not triton_available():
        return "needs the triton package"
    if device.type != "cuda" and not triton_interpreter_enabled():
        return NEEDS_A_TRITON_DEVICE
    return None


def device_dtypes(device: torch.device, backend: str) -> tuple[torch.dtype, ...]:
    """The float dtypes a row of `backend` runs in on `device`."""
    dtypes = KERNEL_DTYPES if backend == "triton" else (*KERNEL_DTYPES, torch.float64)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        dtypes = tuple(d for d in dtypes if d != torch.bfloat16)
    return dtypes


def plan(op_names, backends, dtypes, device: torch.device) -> list[Row]:
    """Every op × backend × dtype × layout row, in that order; `dtypes=None`: every dtype the device takes."""
    rows = []
    for op in op_names:
        for backend in backends:
            for dtype in device_dtypes(device, backend):
                if dtypes is None or dtype in dtypes:
                    rows.extend(Row(op, backend, dtype, layout) for layout in OP_SPECS[op].layouts)
    return rows


def run_row(row: Row, *, device: torch.device, examples: int, on_case: Callable[[], None] | None = None) -> None:
    """Run `row` in place: skipped (with the reason), or `check_layout` then, for Triton, opcheck."""
    started = time.perf_counter()
    reason = skip_reason(row.backend, device)
    if reason is not None:
        row.status, row.reason = "skipped", reason
        return
    function = functools.partial(getattr(ops, row.op), backend=row.backend)
    try:
        result = check_layout(function, row.op, device=device, dtype=row.dtype, layout=row.layout, examples=examples,
                              on_case=on_case)
        row.status, row.cases, row.worst_ratio = "passed", result.cases, result.worst_ratio
    except CheckFailure as failure:
        row.status, row.cases, row.worst_ratio, row.reason = "failed", failure.cases_checked, failure.worst_ratio, str(failure)
    except Exception:  # a crash in one row must not hide the others
        row.status, row.reason = "failed", traceback.format_exc(limit=8)
    if row.backend == "triton":
        _opcheck(row, device)
    row.seconds = time.perf_counter() - started


def _opcheck(row: Row, device: torch.device) -> None:
    from adajudge.testing.opcheck import run_opcheck, sample_calls

    try:
        results = [run_opcheck(call) for call in sample_calls(row.op, dtype=row.dtype, layout=row.layout, device=device)]
    except Exception:
        row.status, row.reason = "failed", (row.reason or "") + "\nopcheck crashed:\n" + traceback.format_exc(limit=8)
        return
    row.opcheck = [{"op": r.call.name, "phase": r.call.phase, "results": r.results} for r in results]
    failed = [r for r in results if not r.passed]
    if failed:
        row.status = "failed"
        row.reason = "\n".join([*([row.reason] if row.reason else []), *(
            f"opcheck {r.call.name} ({r.call.phase}): " + "; ".join(f"{test}: {verdict}" for test, verdict in r.results.items()
                                                                   if verdict != "ok") for r in failed)])
