"""AdaJudge refinement (docs/design.md §5 steps 1–2): K transformer blocks over the backbone's hidden states,
mixed by a depth gate.

`H^(0) = hidden`, `H^(k) = Block_k(H^(k−1))`, `α = softmax(W_d c + b_d)` with `c` the mean of `H^(0)`
over real tokens, and `H̃ = Σ_k α_k H^(k)`, computed as `H^(0) + Σ_k α_k (H^(k) − H^(0))` (equal since
`Σ α = 1`) so that an untrained head, whose blocks are the identity, returns `hidden` bit for bit.

Padded input is `[B, T, D]` with `attention_mask [B, T]`; packed input (docs/packing.md) is `[total, D]` with
a `PackedSequences`, every token real. Everything but attention and the gate's mean is per token, so the
two layouts give the same states for the same sequences.
"""
import torch
import torch.nn.functional as F
from torch import nn

from adajudge.nn.attention import packed_attention, padded_attention
from adajudge.nn.packed import PackedSequences
from adajudge.nn.pooling import masked_mean, packed_mean
from adajudge.validation import check_int

HEAD_DIM = 64


def default_num_heads(hidden_size: int) -> int:
    """The number of attention heads whose head size is the divisor of `hidden_size` closest to 64.

    64 exactly when `hidden_size` is a multiple of 64 (576 → 9 heads, 4096 → 64); ties go to the larger
    head size *(ours)*.
    """
    check_int("hidden_size", hidden_size, greater_than=0)
    divisors = [d for d in range(1, hidden_size + 1) if hidden_size % d == 0]
    head_dim = min(divisors, key=lambda d: (abs(d - HEAD_DIM), -d))
    return hidden_size // head_dim


class RefinementBlock(nn.Module):
    """Pre-RMSNorm bidirectional multi-head attention over real tokens, then a pre-RMSNorm SwiGLU MLP, each
    added to its input *(ours, docs/design.md §5)*. No biases and no positions (the backbone's states carry
    them). `out_proj` and `down_proj` start at zero, so a new block is the identity.

    Args:
        hidden_size: `D`. num_heads: divides `D`. intermediate_size: SwiGLU width `F`.
        eps: RMSNorm epsilon.
    """

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, eps: float = 1e-6):
        super().__init__()
        check_int("hidden_size", hidden_size, greater_than=0)
        check_int("num_heads", num_heads, greater_than=0)
        check_int("intermediate_size", intermediate_size, greater_than=0)
        if hidden_size % num_heads != 0:
            raise ValueError(f"num_heads: expected a divisor of hidden_size={hidden_size}, got {num_heads}")
        self.num_heads = num_heads
        self.attn_norm = nn.RMSNorm(hidden_size, eps=eps)
        self.qkv_proj = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.out_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.mlp_norm = nn.RMSNorm(hidden_size, eps=eps)
        self.gate_up_proj = nn.Linear(hidden_size, 2 * intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.down_proj.weight)

    def forward(
        self, x: torch.Tensor, attention_mask: torch.Tensor | None, sequences: PackedSequences | None = None
    ) -> torch.Tensor:
        """`x [B, T, D]` with `attention_mask [B, T]`, or packed `x [total, D]` with `sequences` (and
        `attention_mask=None`) → the same shape, in the parameters' dtype.

        Tokens attend within their own sequence, and never to padded ones; padded positions come out finite
        but meaningless.
        """
        tokens = x.shape[:-1]
        q, k, v = self.qkv_proj(self.attn_norm(x)).view(*tokens, 3, self.num_heads, -1).unbind(-3)
        if sequences is None:
            attended = padded_attention(q, k, v, attention_mask)
        else:
            attended = packed_attention(q, k, v, sequences)
        x = x + self.out_proj(attended.reshape(x.shape))
        gate, up = self.gate_up_proj(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down_proj(F.silu(gate) * up)


class Refinement(nn.Module):
    """`num_blocks` `RefinementBlock`s mixed by the depth gate; `num_blocks=0` is the identity.

    The gate's `W_d`, `b_d` start at zero *(ours)*: `α` is uniform until trained.

    Args:
        hidden_size: `D`. num_blocks: `K >= 0`. num_heads: attention heads per block.
        intermediate_size: SwiGLU width.
    """

    def __init__(self, hidden_size: int, num_blocks: int, num_heads: int, intermediate_size: int):
        super().__init__()
        check_int("hidden_size", hidden_size, greater_than=0)
        check_int("num_blocks", num_blocks, at_least=0)
        self.blocks = nn.ModuleList(
            RefinementBlock(hidden_size, num_heads, intermediate_size) for _ in range(num_blocks)
        )
        self.depth_gate = nn.Linear(hidden_size, num_blocks) if num_blocks else None
        if self.depth_gate is not None:
            nn.init.zeros_(self.depth_gate.weight)
            nn.init.zeros_(self.depth_gate.bias)

    def depth_weights(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, sequences: PackedSequences | None = None
    ) -> torch.Tensor:
        """`α [B, K]` (packed: `[N, K]`) fp32: softmax of the gate applied to `c`, the mean of `hidden` over
        each sequence's real tokens."""
        if sequences is None:
            context = masked_mean(hidden, attention_mask.bool())  # [B, D] in hidden's dtype
        else:
            context = packed_mean(hidden, None, sequences)  # [N, D]
        return torch.softmax(self.depth_gate(context.to(self.depth_gate.weight.dtype)).float(), dim=-1)

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None, sequences: PackedSequences | None = None
    ) -> torch.Tensor:
        """`H̃ [B, T, D]` from `hidden [B, T, D]` and `attention_mask [B, T]`, or packed `H̃ [total, D]` from
        `hidden [total, D]` and `sequences` (`attention_mask=None`).

        With no block, `hidden` itself, in its own dtype. With blocks, in the parameters' dtype: the blocks'
        matmuls need one dtype, so `hidden` is cast once, after the gate has read it in its own dtype.
        """
        if self.depth_gate is None:
            return hidden
        alpha = self.depth_weights(hidden, attention_mask, sequences)  # [B, K] or [N, K], fp32
        hidden = hidden.to(self.depth_gate.weight.dtype)
        # per token: [B, 1, K] padded, [total, K] packed
        alpha = (alpha[:, None] if sequences is None else alpha[sequences.token_sequence]).to(hidden.dtype)
        mixed, state = hidden, hidden
        for k, block in enumerate(self.blocks):
            state = block(state, attention_mask, sequences)
            mixed = mixed + alpha[..., k, None] * (state - hidden)
        return mixed
