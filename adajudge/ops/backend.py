"""Choosing an implementation: `auto`, `triton`, `torch` or `reference`, never a silent fallback."""
import importlib
import importlib.util
import os

import torch

BACKENDS = ("auto", "triton", "torch", "reference")
OPS = ("multiview_pool", "router_mix", "preference_loss")


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


def _import_triton_module(op: str):
    try:
        return importlib.import_module(f"adajudge.kernels.{op}")
    except ModuleNotFoundError as error:
        if error.name != "triton":
            raise
        raise ModuleNotFoundError(
            "backend='triton' needs the `triton` package, which is not installed; `pip install triton` or use backend='torch'"
        ) from error


# Launcher modules per (backend, op). The fused PyTorch ones are imported now; the Triton ones too when CUDA is
# present (so `torch.compile` never has to trace an import), otherwise on first use (the CPU interpreter).
_IMPLEMENTATIONS = {("torch", op): importlib.import_module(f"adajudge.fused.{op}") for op in OPS}
if torch.cuda.is_available() and importlib.util.find_spec("triton") is not None:
    _IMPLEMENTATIONS |= {("triton", op): _import_triton_module(op) for op in OPS}


def implementation(backend: str, op: str):
    """The module holding `<op>_fwd` / `<op>_bwd` for a resolved backend (`"triton"` or `"torch"`)."""
    if (backend, op) not in _IMPLEMENTATIONS:
        _IMPLEMENTATIONS[backend, op] = _import_triton_module(op)
    return _IMPLEMENTATIONS[backend, op]
