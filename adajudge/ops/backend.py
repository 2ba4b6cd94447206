"""Choosing an implementation: `auto`, `triton`, `torch` or `reference`, never a silent fallback."""
import os

import torch

from adajudge.validation import check_choice

BACKENDS = ("auto", "triton", "torch", "reference")


def triton_interpreter_enabled() -> bool:
    """True when `TRITON_INTERPRET=1`: Triton kernels then run on CPU tensors (slowly, for testing)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def resolve_backend(backend, device: torch.device, dtype: torch.dtype) -> str:
    """Map `backend` to `"triton"`, `"torch"` or `"reference"` for tensors of `dtype` on `device`, or raise.

    `"auto"`: Triton on CUDA, the fused PyTorch path elsewhere. fp64 input runs the fused PyTorch path under
    `"auto"` and `"triton"` alike: the kernels compute in fp32, and fp64 is asked for to be computed in fp64.
    """
    check_choice("backend", backend, BACKENDS)
    if backend == "reference":
        return "reference"
    if dtype == torch.float64:
        return "torch"
    if backend == "auto":
        return "triton" if device.type == "cuda" else "torch"
    if backend == "triton" and device.type != "cuda" and not triton_interpreter_enabled():
        raise ValueError(
            f"backend: expected CUDA tensors for 'triton' (or TRITON_INTERPRET=1 to run the kernels on the CPU), "
            f"got tensors on {device.type!r}; use backend='torch' or 'auto' there"
        )
    return backend


def triton_missing(error: ImportError):
    """A stand-in for a Triton entry point when the `triton` package is absent: raises a clear error."""

    def unavailable(*args, **kwargs):
        raise ModuleNotFoundError(
            "backend='triton' needs the `triton` package, which is not installed; `pip install triton` or use "
            "backend='torch'"
        ) from error

    return unavailable
