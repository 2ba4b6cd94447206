"""Pooling for the heads: `MultiViewPooling` (the learnable module around `adajudge.ops.multiview_pool`,
docs/design.md §3) and the two plain poolings that need no fused op, last token and mean, for padded
(`last_token_states`, `masked_mean`) and packed (`packed_last_states`, `packed_mean`) input."""
import torch
from torch import nn

from adajudge import ops
from adajudge.nn.packed import PackedSequences
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


def packed_last_states(hidden: torch.Tensor, tokens: torch.Tensor | None, sequences: PackedSequences) -> torch.Tensor:
    """`hidden[τ_n]` with `τ_n` the last token of sequence `n` where `tokens [total]` is True (every token when
    None); zeros for a sequence with none. `[N, D]` in hidden's dtype; sync-free."""
    positions = torch.arange(hidden.shape[0], device=hidden.device)
    if tokens is not None:
        positions = torch.where(tokens, positions, -1)
    last = torch.full((sequences.num_sequences,), -1, dtype=positions.dtype, device=hidden.device)
    last = last.scatter_reduce(0, sequences.token_sequence, positions, reduce="amax")  # [N], -1 where none
    return hidden[last.clamp(min=0)] * (last >= 0)[:, None].to(hidden.dtype)


def packed_mean(hidden: torch.Tensor, tokens: torch.Tensor | None, sequences: PackedSequences) -> torch.Tensor:
    """Mean of packed `hidden [total, D]` over each sequence's tokens where `tokens [total]` is True (every
    token when None); zeros for a sequence with none. `[N, D]` in hidden's dtype, summed in fp32 (fp64 for
    fp64 input); sync-free."""
    dtype = torch.promote_types(hidden.dtype, torch.float32)
    weights = torch.ones(hidden.shape[0], dtype=dtype, device=hidden.device) if tokens is None else tokens.to(dtype)
    counts = torch.zeros(sequences.num_sequences, dtype=dtype, device=hidden.device)
    counts = counts.index_add(0, sequences.token_sequence, weights).clamp(min=1)  # [N]
    weights = weights / counts[sequences.token_sequence]  # [total], 1/|tokens_n| on the tokens
    sums = hidden.new_zeros(sequences.num_sequences, hidden.shape[-1], dtype=dtype)
    return sums.index_add(0, sequences.token_sequence, hidden.to(dtype) * weights[:, None]).to(hidden.dtype)


class MultiViewPooling(nn.Module):
    """Pool hidden states into the four views (last response token, response mean, response attention,
    prompt mean) with one fused pass over `hidden`.

    The attention view scores token `t` with `a_t = <hidden_t, attn_weight> + attn_bias` and takes the
    softmax over the response tokens. `attn_weight` starts at zero *(ours)*: the attention view then
    begins as the response mean, deterministically, and still gets a gradient. `attn_bias` starts at zero
    too; the softmax is shift-invariant, so it never changes the output and its gradient is 0 up to
    rounding. It is kept because the design's formula (and checkpoints written from it) carry `b_a`. It is
    a one-element `[1]` tensor, not a scalar, because FSDP2 (`fully_shard`) shards no scalar parameter;
    a scalar `attn_bias` in an older state dict still loads.

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
        self.attn_bias = nn.Parameter(torch.zeros(1))

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

    def forward_unchecked(self, hidden, attention_mask, response_mask=None, sequences: PackedSequences | None = None):
        """`forward` on input its caller has already validated (a head checks its masks once): padded, or
        packed `hidden [total, D]` of `sequences` with `attention_mask=None` (every token real)."""
        if sequences is None:
            return multiview_pool_validated(
                hidden, attention_mask, response_mask, self.attn_weight, self.attn_bias, None, None, self.backend
            )
        real = torch.ones(hidden.shape[0], dtype=torch.int64, device=hidden.device)
        return multiview_pool_validated(
            hidden, real, response_mask, self.attn_weight, self.attn_bias, sequences.cu_seqlens,
            sequences.given_max_seqlen, self.backend,
        )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        bias = state_dict.get(prefix + "attn_bias")
        if bias is not None and bias.dim() == 0:  # written while `attn_bias` was a scalar
            state_dict[prefix + "attn_bias"] = bias.reshape(1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, backend={self.backend!r}"
