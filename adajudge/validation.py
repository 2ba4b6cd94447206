"""Argument checks for every public entry point of adajudge: one module, one message style.

Each check raises `TypeError` when a value is of the wrong kind and `ValueError` when it is of the right
kind but out of range, with the message

    "<name>: expected <what was expected>, got <what came>"

and returns the value normalised (an `int`, a `float`, ...), so callers write
`self.top_p = check_float("top_p", top_p, greater_than=0, at_most=1)`.

Tensor checks come in two kinds. Structure (rank, shape, dtype, device) costs nothing and always runs.
Checks that read tensor *values* (mask entries, `cu_seqlens` order, response ⊆ attention) need the values
on the host, which on a GPU waits for every queued kernel; `check_values` folds all of one call's value
checks into a single reduction and a single device-to-host copy, and names the failing check only when
one failed. Value checks are skipped while `torch.compile` traces, during CUDA graph capture, and when
`ADAJUDGE_CHECK_VALUES=0`; each is written as a function that computes its flag, so a skipped check
launches nothing.
"""
import math
import numbers
import os
from collections.abc import Callable, Sequence

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
MASK_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def _interval(greater_than, at_least, at_most, less_than) -> str:
    """`" in (0, 1]"`, `" >= 0"`, ... for the bounds given; `""` for none."""
    low = f"({greater_than}" if greater_than is not None else f"[{at_least}" if at_least is not None else None
    high = f"{at_most}]" if at_most is not None else f"{less_than})" if less_than is not None else None
    if low and high:
        return f" in {low}, {high}"
    if low:
        return f" > {greater_than}" if greater_than is not None else f" >= {at_least}"
    if high:
        return f" <= {at_most}" if at_most is not None else f" < {less_than}"
    return ""


def _out_of_bounds(value, greater_than, at_least, at_most, less_than) -> bool:
    return (
        (greater_than is not None and not value > greater_than)
        or (at_least is not None and not value >= at_least)
        or (at_most is not None and not value <= at_most)
        or (less_than is not None and not value < less_than)
    )


def check_int(name: str, value, *, greater_than=None, at_least=None, at_most=None, less_than=None) -> int:
    """`value` as an `int` within the given bounds (bools are refused: `True` is not a size)."""
    bounds = _interval(greater_than, at_least, at_most, less_than)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int{bounds}, got {type(value).__name__}")
    if _out_of_bounds(value, greater_than, at_least, at_most, less_than):
        raise ValueError(f"{name}: expected an int{bounds}, got {value}")
    return int(value)


def check_float(name: str, value, *, greater_than=None, at_least=None, at_most=None, less_than=None) -> float:
    """`value` (any real number but a bool) as a finite `float` within the given bounds."""
    bounds = _interval(greater_than, at_least, at_most, less_than)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a float{bounds}, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or _out_of_bounds(value, greater_than, at_least, at_most, less_than):
        raise ValueError(f"{name}: expected a finite float{bounds}, got {value}")
    return value


def check_bool(name: str, value) -> bool:
    """`value`, which must be a `bool`."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return value


def check_str(name: str, value) -> str:
    """`value`, which must be a `str`."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a str, got {type(value).__name__}")
    return value


def check_choice(name: str, value, choices: Sequence):
    """`value`, which must be one of `choices`."""
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"{name}: expected one of {tuple(choices)}, got {value!r}")
    return value


def check_callable(name: str, value) -> Callable:
    """`value`, which must be callable."""
    if not callable(value):
        raise TypeError(f"{name}: expected a callable, got {type(value).__name__}")
    return value


def check_instance(name: str, value, cls: type, what: str | None = None):
    """`value`, which must be an instance of `cls`; `what` names it in the message (default "a <class name>")."""
    if not isinstance(value, cls):
        raise TypeError(f"{name}: expected {what or 'a ' + cls.__name__}, got {type(value).__name__}")
    return value


def check_tensor(name: str, value, *, ndim=None, dtypes=None, shape=None, device=None) -> torch.Tensor:
    """`value`, which must be a tensor of the given rank (an int or a tuple of ints), dtype, shape, device."""
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
    return value


def value_checks_enabled() -> bool:
    """False while `torch.compile` traces, during CUDA graph capture, and under `ADAJUDGE_CHECK_VALUES=0`."""
    if os.environ.get("ADAJUDGE_CHECK_VALUES", "1") == "0" or torch.compiler.is_compiling():
        return False
    return not (torch.cuda.is_available() and torch.cuda.is_current_stream_capturing())


def check_values(*checks) -> None:
    """Run value checks with one device-to-host copy; raise for the first that failed.

    Each check is `(name, failed, message)`: `failed()` computes a 0-dim bool tensor, True when the check
    fails, and `message()` says what was expected and what came (called only for a failing check, so it may
    read more values). `None` entries are ignored. Skipped when `value_checks_enabled()` is False: then no
    `failed()` is called, and no reduction runs.
    """
    checks = [check for check in checks if check is not None]
    if not checks or not value_checks_enabled():
        return
    failed = torch.stack([flag() for _, flag, _ in checks]).tolist()  # the one sync
    for (name, _, message), bad in zip(checks, failed):
        if bad:
            raise ValueError(f"{name}: {message()}")


def binary_mask_check(name: str, mask: torch.Tensor):
    """A `check_values` entry: `mask` holds only 0 and 1 (None for a bool mask, which can hold nothing else)."""
    if mask.dtype == torch.bool:
        return None
    return (
        name,
        lambda: ((mask != 0) & (mask != 1)).any(),
        lambda: f"expected only 0 and 1 entries, got values {mask.unique()[:8].tolist()}",
    )


def mask_checks(attention_mask: torch.Tensor, response_mask: torch.Tensor | None) -> list:
    """`check_values` entries for a pair of token masks: both 0/1, response ⊆ attention."""
    if response_mask is None:
        return [binary_mask_check("attention_mask", attention_mask)]
    return [
        binary_mask_check("attention_mask", attention_mask),
        binary_mask_check("response_mask", response_mask),
        (
            "response_mask",
            lambda: (response_mask.bool() & ~attention_mask.bool()).any(),
            lambda: "expected a subset of attention_mask, got response tokens where attention_mask is 0",
        ),
    ]


def check_head_inputs(hidden, attention_mask, response_mask, hidden_size: int) -> None:
    """A reward head's `forward` inputs, checked once per forward: `hidden [B, T, D]` floating with
    `D = hidden_size`, masks `[B, T]` on hidden's device, 0/1, response ⊆ attention (one sync in all)."""
    check_tensor("hidden", hidden)
    if not hidden.dtype.is_floating_point:
        raise TypeError(f"hidden: expected a floating dtype (fp32, bf16, fp16), got {hidden.dtype}")
    if hidden.dim() != 3 or hidden.shape[-1] != hidden_size:
        raise ValueError(f"hidden: expected shape [B, T, {hidden_size}], got {list(hidden.shape)}")
    check_tensor("attention_mask", attention_mask, dtypes=MASK_DTYPES, shape=hidden.shape[:2], device=hidden.device)
    if response_mask is not None:
        check_tensor("response_mask", response_mask, dtypes=MASK_DTYPES, shape=hidden.shape[:2], device=hidden.device)
    check_values(*mask_checks(attention_mask, response_mask))
