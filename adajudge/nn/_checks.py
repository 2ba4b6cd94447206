"""Validation shared by the `adajudge.nn` modules: constructor options and head inputs.

Only checks that need no device sync live here (shapes, dtypes, option ranges), so a head's forward stays
graph-capturable; the value checks on masks (0/1, response within attention) are `adajudge.ops`'s job.
"""
import math

import torch

from adajudge.ops.backend import BACKENDS
from adajudge.ops.validation import MASK_DTYPES


def check_backend(backend) -> str:
    """Return `backend` if it names an `adajudge.ops` backend, else raise `ValueError`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    return backend


def check_positive_int(name: str, value, *, allow_zero: bool = False) -> int:
    """Return `value` if it is an int > 0 (>= 0 with `allow_zero`), else raise `TypeError`/`ValueError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected an int {bound}, got {value}")
    return value


def check_float(name: str, value, *, positive: bool = False, low: float | None = None, high: float | None = None) -> float:
    """Return `value` as a float if it is a finite real number in range, else raise `TypeError`/`ValueError`.

    `positive` asks for `value > 0`; `low`/`high` give the closed interval `[low, high]`.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{name}: expected a finite float{' > 0' if positive else ''}, got {value}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: expected a float in [{low}, {high}], got {value}")
    return value


def _check_mask(name: str, mask, shape: tuple[int, int]) -> None:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype not in MASK_DTYPES:
        raise TypeError(f"{name}: expected a bool or integer 0/1 tensor, got dtype {mask.dtype}")
    if tuple(mask.shape) != shape:
        raise ValueError(f"{name}: expected shape {list(shape)} (the [B, T] of hidden), got {list(mask.shape)}")


def check_head_inputs(hidden, attention_mask, response_mask, hidden_size: int) -> None:
    """Check a head's `forward` inputs: `hidden [B, T, D]` floating with `D = hidden_size`, masks `[B, T]`."""
    if not isinstance(hidden, torch.Tensor):
        raise TypeError(f"hidden: expected a torch.Tensor, got {type(hidden).__name__}")
    if not hidden.dtype.is_floating_point:
        raise TypeError(f"hidden: expected a floating dtype (fp32, bf16, fp16), got {hidden.dtype}")
    if hidden.dim() != 3 or hidden.shape[-1] != hidden_size:
        raise ValueError(f"hidden: expected shape [B, T, {hidden_size}], got {list(hidden.shape)}")
    _check_mask("attention_mask", attention_mask, tuple(hidden.shape[:2]))
    if response_mask is not None:
        _check_mask("response_mask", response_mask, tuple(hidden.shape[:2]))
    for name, tensor in (("attention_mask", attention_mask), ("response_mask", response_mask)):
        if tensor is not None and tensor.device != hidden.device:
            raise ValueError(f"{name}: expected device {hidden.device} (hidden's), got {tensor.device}")
