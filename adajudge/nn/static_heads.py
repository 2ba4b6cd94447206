"""Static reward heads: one linear value head on one pooled view (docs/design.md §5, the baselines)."""
import torch
from torch import nn

from adajudge.nn.output import HeadOutput
from adajudge.nn.packed import checked_head_inputs
from adajudge.nn.pooling import (
    MultiViewPooling,
    last_token_states,
    masked_mean,
    packed_last_states,
    packed_mean,
    response_tokens,
)
from adajudge.ops.backend import BACKENDS
from adajudge.validation import check_bool, check_choice, check_int
from adajudge.views import View


class _PooledLinearHead(nn.Module):
    """`reward = score(z)` for one pooled vector `z [B, D]` per row; `HeadOutput` with `V = 1`.

    Subclasses define `pool(hidden, attention_mask, response_mask, sequences) -> [B, D]` on inputs already
    checked (`sequences` None for padded input, else the `PackedSequences` of packed input). The vector is
    pooled in `hidden`'s dtype, scored in the head's parameter dtype, returned as fp32.
    """

    def __init__(self, hidden_size: int, bias: bool, backend: str):
        super().__init__()
        self.hidden_size = check_int("hidden_size", hidden_size, greater_than=0)
        check_bool("bias", bias)
        self.backend = check_choice("backend", backend, BACKENDS)
        self.score = nn.Linear(hidden_size, 1, bias=bias)

    def forward(
        self,
        hidden: torch.Tensor,
        attention_mask: torch.Tensor | None,
        response_mask: torch.Tensor | None = None,
        *,
        cu_seqlens: torch.Tensor | None = None,
        max_seqlen: int | None = None,
    ) -> HeadOutput:
        """Score `hidden [B, T, D]` with masks `[B, T]` (see `MultiViewPooling`), or packed `hidden [total, D]`
        with `cu_seqlens [N+1]`, `attention_mask=None` and `response_mask [total]` (docs/packing.md) →
        `HeadOutput` with `V = 1` over the `B` rows or `N` sequences."""
        sequences = checked_head_inputs(hidden, attention_mask, response_mask, cu_seqlens, max_seqlen, self.hidden_size)
        pooled = self.pool(hidden, attention_mask, response_mask, sequences)  # [B, D]
        reward = self.score(pooled.to(self.score.weight.dtype)).squeeze(1).float()  # [B]
        return HeadOutput(
            reward=reward,
            view_scores=reward[:, None],
            router_probs=torch.ones_like(reward)[:, None],
            router_entropy=torch.zeros_like(reward),
            representation=pooled.float(),
        )


class LastTokenHead(_PooledLinearHead):
    """Reward from the last response token: `score(hidden[b, τ_b])`, `τ_b` the last response token (the
    last real token when `response_mask` is None), for either padding side. One gather.

    With `bias=False` this is a transformers `*ForSequenceClassification` score head (`num_labels=1`):
    the linear is named `score`, so its `score.weight` loads as is.

    Args:
        hidden_size: `D`. bias: add a bias to the score. backend: `adajudge.ops` backend (kept for a uniform
            constructor: this head calls no fused op).
    """

    def __init__(self, hidden_size: int, bias: bool = False, backend: str = "auto"):
        super().__init__(hidden_size, bias, backend)

    def pool(self, hidden, attention_mask, response_mask, sequences):
        if sequences is not None:
            return packed_last_states(hidden, None if response_mask is None else response_mask.bool(), sequences)
        return last_token_states(hidden, response_tokens(attention_mask, response_mask))


class MeanPoolHead(_PooledLinearHead):
    """Reward from the mean of the response tokens' hidden states. One batched product.

    Args:
        hidden_size: `D`. bias: add a bias to the score. backend: `adajudge.ops` backend (kept for a uniform
            constructor: this head calls no fused op).
    """

    def __init__(self, hidden_size: int, bias: bool = True, backend: str = "auto"):
        super().__init__(hidden_size, bias, backend)

    def pool(self, hidden, attention_mask, response_mask, sequences):
        if sequences is not None:
            return packed_mean(hidden, None if response_mask is None else response_mask.bool(), sequences)
        return masked_mean(hidden, response_tokens(attention_mask, response_mask))


class AttentionPoolHead(_PooledLinearHead):
    """Reward from learned attention pooling over the response tokens (`MultiViewPooling`'s attn view).

    Args:
        hidden_size: `D`. bias: add a bias to the score. backend: `adajudge.ops` backend.
    """

    def __init__(self, hidden_size: int, bias: bool = True, backend: str = "auto"):
        super().__init__(hidden_size, bias, backend)
        self.attention = MultiViewPooling(hidden_size, backend=backend)

    def pool(self, hidden, attention_mask, response_mask, sequences):
        return self.attention.forward_unchecked(hidden, attention_mask, response_mask, sequences)[:, View.ATTN]
