"""Choosing an implementation: `auto`, `triton`, `torch` or `reference`, never a silent fallback."""
import importlib
import os

import torch

BACKENDS = ("auto", "triton", "torch", "reference")


def triton_interpreter_enabled() -> bool:
    """True when `TRITON_INTERPRET=1`: Triton kernels then run on CPU tensors (slowly, for testing)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def resolve_backend(backend, device: torch.device) -> str:
    """Map `backend` to `"triton"`, `"torch"` or `"reference"` for tensors on `device`, or raise."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "triton" if device.type == "cuda" else "torch"
    if backend == "triton" and device.type != "cuda" and not triton_interpreter_enabled():
        raise ValueError(
            f"backend='triton': expected CUDA tensors (or TRITON_INTERPRET=1 to run the kernels on the CPU), "
            f"got tensors on {device.type!r}; use backend='torch' or 'auto' there"
        )
    return backend


def implementation(backend: str, op: str):
    """The module holding `<op>_fwd` / `<op>_bwd` for a resolved backend (`"triton"` or `"torch"`)."""
    if backend == "triton":
        try:
            return importlib.import_module(f"adajudge.kernels.{op}")
        except ModuleNotFoundError as error:
            if error.name != "triton":
                raise
            raise ModuleNotFoundError(
                f"backend='triton' needs the `triton` package, which is not installed; "
                f"`pip install triton` or use backend='torch'"
            ) from error
    return importlib.import_module(f"adajudge.fused.{op}")
