"""`multiview_pool`: last-token, mean, attention and prompt views in one fused op (docs/design.md §3)."""
import torch

from adajudge import reference
from adajudge.fused.multiview_pool import multiview_pool_fused
from adajudge.ops.backend import resolve_backend, triton_missing
from adajudge.validation import (
    FLOAT_DTYPES,
    MASK_DTYPES,
    check_int,
    check_tensor,
    check_values,
    mask_checks,
)

try:
    from adajudge.kernels.multiview_pool import multiview_pool_triton
except ImportError as error:  # Triton is optional where it does not install
    if error.name != "triton":
        raise
    multiview_pool_triton = triton_missing(error)


def _validate(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens, max_seqlen) -> None:
    check_tensor("hidden", hidden, dtypes=FLOAT_DTYPES)
    device, checks = hidden.device, []
    if cu_seqlens is None:
        check_tensor("hidden", hidden, ndim=3)
        if hidden.shape[1] == 0:
            raise ValueError(f"hidden: expected at least one token per row (T >= 1), got shape {tuple(hidden.shape)}")
        if max_seqlen is not None:
            raise ValueError(f"max_seqlen: only meaningful with cu_seqlens (the packed layout), got {max_seqlen!r} without")
        token_shape = hidden.shape[:2]
    else:
        check_tensor("hidden", hidden, ndim=2)
        check_tensor("cu_seqlens", cu_seqlens, ndim=1, dtypes=(torch.int32, torch.int64), device=device)
        if cu_seqlens.numel() < 2:
            raise ValueError(f"cu_seqlens: expected [N+1] boundaries with N >= 1, got shape {tuple(cu_seqlens.shape)}")
        token_shape = hidden.shape[:1]

        def lengths():
            return cu_seqlens[1:] - cu_seqlens[:-1]

        checks.append((
            "cu_seqlens",
            lambda: (cu_seqlens[0] != 0) | (cu_seqlens[-1] != hidden.shape[0]) | (lengths() < 0).any(),
            lambda: f"expected non-decreasing boundaries from 0 to total_T={hidden.shape[0]}, got "
                    f"{cu_seqlens[:8].tolist()}{'...' if cu_seqlens.numel() > 8 else ''}",
        ))
        if max_seqlen is not None:
            check_int("max_seqlen", max_seqlen, at_least=0)
            checks.append((
                "max_seqlen",
                lambda: (lengths() > max_seqlen).any(),
                lambda: f"expected at least the longest packed row ({int(lengths().max())}), got {max_seqlen}",
            ))
    check_tensor("attention_mask", attention_mask, shape=token_shape, dtypes=MASK_DTYPES, device=device)
    if response_mask is not None:
        check_tensor("response_mask", response_mask, shape=token_shape, dtypes=MASK_DTYPES, device=device)
    check_tensor("attn_weight", attn_weight, shape=hidden.shape[-1:], dtypes=FLOAT_DTYPES, device=device)
    if attn_bias is not None:
        check_tensor("attn_bias", attn_bias, dtypes=FLOAT_DTYPES, device=device)
        if attn_bias.numel() != 1:
            raise ValueError(f"attn_bias: expected a scalar tensor (one element), got shape {tuple(attn_bias.shape)}")
    if hidden.shape[-1] == 0:
        raise ValueError("hidden: expected a hidden size D >= 1, got D = 0")
    check_values(*checks, *mask_checks(attention_mask, response_mask))


def multiview_pool(
    hidden: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor | None = None,
    *,
    attn_weight: torch.Tensor,
    attn_bias: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    max_seqlen: int | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Pool hidden states into the four AdaJudge views (arXiv 2601.08097; docs/design.md §3).

    Over response tokens `R_b` and prompt tokens `P_b = real ∖ R_b`:
    last `z_L = hidden[b, max R_b]`; mean `z_M = mean_{R_b} hidden`; attention
    `z_A = Σ_{R_b} softmax_{R_b}(<hidden, w_a> + b_a)_t · hidden_t`; prompt `z_P = mean_{P_b} hidden`.

    Args:
        hidden: `[B, T, D]` fp32/bf16/fp16/fp64 (`B = 0` allowed, `T >= 1`), or packed `[total_T, D]` with
            `cu_seqlens`.
        attention_mask: `[B, T]` (packed: `[total_T]`), bool or integer 0/1; either padding side.
        response_mask: same shape, a subset of `attention_mask`; `None` = every real token is response.
        attn_weight: `[D]` attention-pooling weight `w_a` (any stride). attn_bias: one-element tensor `b_a`, or
            `None`.
        cu_seqlens: `[N+1]` int32/int64 boundaries of the packed form (`N` rows, a row may be empty), or `None`.
        max_seqlen: the longest packed row, as flash-attn's varlen functions take it. Given, nothing reads
            tensor values on the host and the op traces under `torch.compile(fullgraph=True)`; omitted, the
            Triton path reads it from `cu_seqlens` once (one device sync; the others need none). A smaller
            value is refused by the value checks; where they are skipped, it still gives the same views (it
            only sets how rows are split across programs: the last split of a row runs to the row's end).
        backend: `"auto"` (Triton on CUDA, fused PyTorch elsewhere), `"triton"`, `"torch"`, `"reference"`.
            fp64 input runs the fused PyTorch path under `"auto"` and `"triton"` (the kernels compute in fp32).

    Returns:
        `[B, 4, D]` in `hidden.dtype`, views in `adajudge.views.View` order (last, mean, attn, prompt),
        accumulated in fp32 (fp64 for fp64 input). Empty `R_b` or `P_b` gives zero vectors, never NaN.
        Differentiable in `hidden`, `attn_weight`, `attn_bias`.

    Host syncs: padded input, none but the value checks (0/1 masks, response ⊆ attention: one sync in all,
    skipped under `torch.compile`, CUDA-graph capture and `ADAJUDGE_CHECK_VALUES=0`); packed input on the
    Triton path adds the `max_seqlen` read when it is not given.

    Example:
        >>> views = multiview_pool(hidden, attention_mask, response_mask, attn_weight=w)
        >>> z_last, z_mean, z_attn, z_prompt = views.unbind(1)
    """
    _validate(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens, max_seqlen)
    return multiview_pool_validated(
        hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens, max_seqlen, backend
    )


def multiview_pool_validated(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens, max_seqlen, backend):
    """`multiview_pool` for input a caller has already validated (the heads check their masks once per
    forward): dispatch only."""
    if response_mask is attention_mask:  # same meaning, and autograd.Function under dynamo rejects duplicate inputs
        response_mask = None
    backend = resolve_backend(backend, hidden.device, hidden.dtype)
    if cu_seqlens is not None and max_seqlen is None and backend == "triton":
        max_seqlen = int((cu_seqlens[1:] - cu_seqlens[:-1]).max())  # the one host read of the packed layout
    match backend:
        case "reference":
            return reference.multiview_pool(
                hidden, attention_mask, response_mask, attn_weight=attn_weight, attn_bias=attn_bias, cu_seqlens=cu_seqlens
            )
        case "torch":
            return multiview_pool_fused(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens)
        case "triton":
            return multiview_pool_triton(hidden, attention_mask, response_mask, attn_weight, attn_bias, cu_seqlens,
                                         max_seqlen or 0)
