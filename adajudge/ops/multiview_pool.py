"""`multiview_pool`: last-token, mean, attention and prompt views in one fused op (DESIGN.md §3)."""
import torch

from adajudge import reference
from adajudge.ops.backend import implementation, resolve_backend
from adajudge.ops.validation import check_binary_mask
from adajudge.validation import FLOAT_DTYPES, MASK_DTYPES, check_tensor, value_checks_enabled


class MultiViewPoolFunction(torch.autograd.Function):
    """Autograd glue shared by the Triton and fused PyTorch launchers (`impl.multiview_pool_fwd/_bwd`)."""

    @staticmethod
    def forward(ctx, hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens, impl):
        views, saved = impl.multiview_pool_fwd(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens)
        ctx.impl = impl
        ctx.save_for_backward(hidden, attn_weight, attn_bias, cu_seqlens, *saved)
        return views

    @staticmethod
    def backward(ctx, grad_views):
        hidden, attn_weight, attn_bias, cu_seqlens, *saved = ctx.saved_tensors
        d_hidden, d_weight, d_bias = ctx.impl.multiview_pool_bwd(grad_views, hidden, attn_weight, attn_bias, cu_seqlens, tuple(saved))
        return d_hidden, None, None, d_weight, d_bias, None, None


def _validate(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens):
    check_tensor("hidden", hidden, dtypes=FLOAT_DTYPES)
    device = hidden.device
    if cu_seqlens is None:
        check_tensor("hidden", hidden, ndim=3)
        token_shape = hidden.shape[:2]
    else:
        check_tensor("hidden", hidden, ndim=2)
        check_tensor("cu_seqlens", cu_seqlens, ndim=1, dtypes=(torch.int32, torch.int64), device=device)
        if cu_seqlens.numel() < 2:
            raise ValueError(f"cu_seqlens: expected [N+1] boundaries with N >= 1, got shape {tuple(cu_seqlens.shape)}")
        token_shape = hidden.shape[:1]
        if value_checks_enabled():
            steps = cu_seqlens[1:] - cu_seqlens[:-1]
            if int(cu_seqlens[0]) != 0 or int(cu_seqlens[-1]) != hidden.shape[0] or bool((steps < 0).any()):
                raise ValueError(
                    f"cu_seqlens: expected non-decreasing boundaries from 0 to total_T={hidden.shape[0]}, "
                    f"got {cu_seqlens[:8].tolist()}{'...' if cu_seqlens.numel() > 8 else ''}"
                )
    check_tensor("attention_mask", attention_mask, shape=token_shape, dtypes=MASK_DTYPES, device=device)
    check_binary_mask("attention_mask", attention_mask)
    if response_mask is not None:
        check_tensor("response_mask", response_mask, shape=token_shape, dtypes=MASK_DTYPES, device=device)
        check_binary_mask("response_mask", response_mask)
        if value_checks_enabled() and bool((response_mask.bool() & ~attention_mask.bool()).any()):
            raise ValueError("response_mask: expected a subset of attention_mask, got response tokens where attention_mask is 0")
    check_tensor("attn_weight", attn_weight, shape=hidden.shape[-1:], dtypes=FLOAT_DTYPES, device=device)
    if attn_bias is not None:
        check_tensor("attn_bias", attn_bias, dtypes=FLOAT_DTYPES, device=device)
        if attn_bias.numel() != 1:
            raise ValueError(f"attn_bias: expected a scalar tensor (one element), got shape {tuple(attn_bias.shape)}")
    if hidden.shape[-1] == 0:
        raise ValueError("hidden: expected a hidden size D >= 1, got D = 0")


def multiview_pool(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor | None = None,
    *,
    attn_weight: torch.Tensor,
    attn_bias: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Pool hidden states into the four AdaJudge views (arXiv 2601.08097; DESIGN.md §3).

    Over response tokens `R_b` and prompt tokens `P_b = real ∖ R_b`:
    last `z_L = hidden[b, max R_b]`; mean `z_M = mean_{R_b} hidden`; attention
    `z_A = Σ_{R_b} softmax_{R_b}(<hidden, w_a> + b_a)_t · hidden_t`; prompt `z_P = mean_{P_b} hidden`.

    Args:
        hidden: `[B, T, D]` fp32/bf16/fp16/fp64, or packed `[total_T, D]` with `cu_seqlens`.
        attention_mask: `[B, T]` (packed: `[total_T]`), bool or integer 0/1; either padding side.
        response_mask: same shape, a subset of `attention_mask`; `None` = every real token is response.
        attn_weight: `[D]` attention-pooling weight `w_a`. attn_bias: one-element tensor `b_a`, or `None`.
        cu_seqlens: `[N+1]` int32/int64 boundaries of the packed form (`N` rows), or `None`.
        backend: `"auto"` (Triton on CUDA, fused PyTorch elsewhere), `"triton"`, `"torch"`, `"reference"`.

    Returns:
        `[B, 4, D]` in `hidden.dtype`, views (last, mean, attn, prompt), accumulated in fp32. Empty `R_b` or
        `P_b` gives zero vectors, never NaN. Differentiable in `hidden`, `attn_weight`, `attn_bias`.

    Example:
        >>> views = multiview_pool(hidden, attention_mask, response_mask, attn_weight=w)
        >>> z_last, z_mean, z_attn, z_prompt = views.unbind(1)
    """
    _validate(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens)
    resolved = resolve_backend(backend, hidden.device)
    if resolved == "reference":
        return reference.multiview_pool(
            hidden, attention_mask, response_mask, attn_weight=attn_weight, attn_bias=attn_bias, cu_seqlens=cu_seqlens
        )
    impl = implementation(resolved, "multiview_pool")
    if response_mask is attention_mask:  # same meaning, and autograd.Function under dynamo rejects duplicate inputs
        response_mask = None
    return MultiViewPoolFunction.apply(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens, impl)
