"""Pooling for the heads: `MultiViewPooling` (the learnable module around `adajudge.ops.multiview_pool`,
docs/design.md §3) and the two plain poolings that need no fused op, `last_token_states` and `masked_mean`."""
import torch
from torch import nn

from adajudge import ops
from adajudge.ops.backend import BACKENDS
from adajudge.ops.multiview_pool import multiview_pool_validated
from adajudge.validation import check_choice, check_int


def response_tokens(attention_mask: torch.Tensor, response_mask: torch.Tensor | None) -> torch.Tensor:
    """`[B, T]` bool: the tokens being judged (every real token when `response_mask` is None)."""
    real = attention_mask.bool()
    return real if response_mask is None else real & response_mask.bool()


def last_token_states(hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """`hidden[b, τ_b]` with `τ_b` the last True position of `tokens [B, T]` (any padding side); zeros for a
    row with none. `[B, D]` in hidden's dtype; one gather, no sync."""
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    last = torch.where(tokens, positions, -1).amax(dim=1)  # [B]
    rows = hidden.gather(1, last.clamp(min=0)[:, None, None].expand(-1, 1, hidden.shape[-1])).squeeze(1)
    return rows * (last >= 0)[:, None].to(hidden.dtype)


def masked_mean(hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean of `hidden [B, T, D]` over the True positions of `tokens [B, T]`; zeros for a row with none.

    `[B, D]` in hidden's dtype: one batched product with the weights `1/|tokens_b|` in hidden's dtype (the
    product accumulates in fp32; a mean, unlike a sum, cannot overflow fp16). `hidden` is never upcast as a
    whole.
    """
    weights = tokens / tokens.sum(1, keepdim=True, dtype=torch.float32).clamp(min=1)  # [B, T] fp32
    return torch.bmm(weights.to(hidden.dtype)[:, None, :], hidden).squeeze(1)


class MultiViewPooling(nn.Module):
    """Pool hidden states into the four views (last response token, response mean, response attention,
    prompt mean) with one fused pass over `hidden`.

    The attention view scores token `t` with `a_t = <hidden_t, attn_weight> + attn_bias` and takes the
    softmax over the response tokens. `attn_weight` starts at zero *(ours)*: the attention view then
    begins as the response mean, deterministically, and still gets a gradient. `attn_bias` starts at zero
    too; the softmax is shift-invariant, so it never changes the output and its gradient is 0 up to
    rounding. It is kept because the design's formula (and checkpoints written from it) carry `b_a`.

    Args:
        hidden_size: `D`.
        backend: `adajudge.ops` backend: "auto", "triton", "torch" or "reference".

    Example:
        >>> pool = MultiViewPooling(64, backend="reference")
        >>> views = pool(torch.randn(2, 5, 64), torch.ones(2, 5, dtype=torch.long))  # [2, 4, 64]
    """

    def __init__(self, hidden_size: int, backend: str = "auto"):
        super().__init__()
        self.hidden_size = check_int("hidden_size", hidden_size, greater_than=0)
        self.backend = check_choice("backend", backend, BACKENDS)
        self.attn_weight = nn.Parameter(torch.zeros(hidden_size))
        self.attn_bias = nn.Parameter(torch.zeros(()))

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor,
        response_mask: torch.Tensor | None = None,
        cu_seqlens: torch.Tensor | None = None,
        max_seqlen: int | None = None,
    ) -> torch.Tensor:
        """Views `[B, 4, D]` in `hidden.dtype` (accumulated in fp32), in `adajudge.views.View` order.

        Args:
            hidden: `[B, T, D]`, or packed `[total_T, D]` with `cu_seqlens` (int32 `[N+1]`).
            attention_mask: `[B, T]` (packed `[total_T]`), 1 for real tokens, either padding side.
            response_mask: like `attention_mask`, 1 for response tokens; `None` = every real token.
            max_seqlen: the longest packed row (see `adajudge.ops.multiview_pool`).
        """
        return ops.multiview_pool(
            hidden,
            attention_mask,
            response_mask,
            attn_weight=self.attn_weight,
            attn_bias=self.attn_bias,
            cu_seqlens=cu_seqlens,
            max_seqlen=max_seqlen,
            backend=self.backend,
        )

    def forward_unchecked(self, hidden, attention_mask, response_mask=None) -> torch.Tensor:
        """`forward` on padded input its caller has already validated (a head checks its masks once)."""
        return multiview_pool_validated(
            hidden, attention_mask, response_mask, self.attn_weight, self.attn_bias, None, None, self.backend
        )

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, backend={self.backend!r}"
