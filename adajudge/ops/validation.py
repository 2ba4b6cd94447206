"""Input checks shared by the public ops. Each failure names the argument, what was expected, what came.

Shape, dtype and device checks are free and always run. Checks that read tensor *values* (mask entries,
`cu_seqlens` order, response ⊆ attention) synchronise with the device, so they are skipped while
`torch.compile` traces, during CUDA graph capture, and when `ADAJUDGE_CHECK_VALUES=0`.
"""
import os

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
MASK_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def value_checks_enabled() -> bool:
    if os.environ.get("ADAJUDGE_CHECK_VALUES", "1") == "0" or torch.compiler.is_compiling():
        return False
    return not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def check_tensor(name, value, *, ndim=None, dtypes=None, shape=None, device=None):
    """Raise TypeError/ValueError unless `value` is a tensor of the given rank, dtype, shape and device."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.dim() not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {tuple(value.shape)}")
    if dtypes is not None and value.dtype not in dtypes:
        names = ", ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name}: expected dtype in ({names}), got {str(value.dtype).replace('torch.', '')}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(value.shape)}")
    if device is not None and value.device != device:
        raise ValueError(f"{name}: expected a tensor on {device}, got one on {value.device}")


def check_binary_mask(name, mask):
    """Values of a 0/1 mask (skipped when value checks are off)."""
    if value_checks_enabled() and mask.dtype != torch.bool and bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError(f"{name}: expected only 0 and 1 entries, got values {mask.unique()[:8].tolist()}")


def check_positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"{name}: expected a finite float > 0, got {value}")


def check_finite_float(name, value, *, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    if value != value or abs(value) == float("inf") or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{name}: expected a finite float{bound}, got {value}")
