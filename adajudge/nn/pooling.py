"""`MultiViewPooling`: the learnable module around `adajudge.ops.multiview_pool` (DESIGN.md §3)."""
import torch
from torch import nn

from adajudge import ops
from adajudge.ops.backend import BACKENDS
from adajudge.validation import check_choice, check_int


class MultiViewPooling(nn.Module):
    """Pool hidden states into the four views (last response token, response mean, response attention,
    prompt mean) with one fused pass over `hidden`.

    The attention view scores token `t` with `a_t = <hidden_t, attn_weight> + attn_bias` and takes the
    softmax over the response tokens. `attn_weight` starts at zero *(ours)*: the attention view then
    begins as the response mean, deterministically, and still gets a gradient. `attn_bias` starts at zero
    too; the softmax is shift-invariant, so it never changes the output and its gradient is 0 up to
    rounding. It is kept because DESIGN.md's formula (and checkpoints written from it) carry `b_a`.

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
    ) -> torch.Tensor:
        """Views `[B, 4, D]` in `hidden.dtype` (accumulated in fp32), order (last, mean, attn, prompt).

        Args:
            hidden: `[B, T, D]`, or packed `[total_T, D]` with `cu_seqlens` (int32 `[N+1]`).
            attention_mask: `[B, T]` (packed `[total_T]`), 1 for real tokens, either padding side.
            response_mask: like `attention_mask`, 1 for response tokens; `None` = every real token.
        """
        return ops.multiview_pool(
            hidden,
            attention_mask,
            response_mask,
            attn_weight=self.attn_weight,
            attn_bias=self.attn_bias,
            cu_seqlens=cu_seqlens,
            backend=self.backend,
        )

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, backend={self.backend!r}"
