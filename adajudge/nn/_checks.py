"""The structure checks of a head's `forward` inputs (no device sync, so a forward stays capturable)."""
import torch

from adajudge.validation import MASK_DTYPES, check_tensor


def check_head_inputs(hidden, attention_mask, response_mask, hidden_size: int) -> None:
    """Check a head's `forward` inputs: `hidden [B, T, D]` floating with `D = hidden_size`, masks `[B, T]`."""
    check_tensor("hidden", hidden)
    if not hidden.dtype.is_floating_point:
        raise TypeError(f"hidden: expected a floating dtype (fp32, bf16, fp16), got {hidden.dtype}")
    if hidden.dim() != 3 or hidden.shape[-1] != hidden_size:
        raise ValueError(f"hidden: expected shape [B, T, {hidden_size}], got {list(hidden.shape)}")
    for name, mask in (("attention_mask", attention_mask), ("response_mask", response_mask)):
        if mask is not None or name == "attention_mask":
            check_tensor(name, mask, dtypes=MASK_DTYPES, shape=hidden.shape[:2], device=hidden.device)
