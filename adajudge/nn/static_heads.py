"""Static reward heads: one linear value head on one pooled view (DESIGN.md §5, the baselines)."""
import torch
from torch import nn

from adajudge import ops
from adajudge.ops.backend import BACKENDS
from adajudge.nn._checks import check_head_inputs
from adajudge.validation import check_bool, check_choice, check_int
from adajudge.nn.output import HeadOutput
from adajudge.nn.pooling import MultiViewPooling

LAST, MEAN, ATTN = 0, 1, 2  # view indices of multiview_pool's output


class _PooledLinearHead(nn.Module):
    """`reward = score(z_view)` for one view of `multiview_pool`; `HeadOutput` with `V = 1`.

    Subclasses set `view` (an index into the views) and define `pool(hidden, attention_mask,
    response_mask) -> [B, 4, D]`. The view is pooled in `hidden`'s dtype (fp32 accumulation), scored in
    the head's parameter dtype, and returned as fp32.
    """

    view: int

    def __init__(self, hidden_size: int, bias: bool, backend: str):
        super().__init__()
        self.hidden_size = check_int("hidden_size", hidden_size, greater_than=0)
        check_bool("bias", bias)
        self.backend = check_choice("backend", backend, BACKENDS)
        self.score = nn.Linear(hidden_size, 1, bias=bias)

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor | None = None
    ) -> HeadOutput:
        """Score `hidden [B, T, D]`; masks `[B, T]` (see `MultiViewPooling`) → `HeadOutput` with `V = 1`."""
        check_head_inputs(hidden, attention_mask, response_mask, self.hidden_size)
        pooled = self.pool(hidden, attention_mask, response_mask)[:, self.view]  # [B, D]
        reward = self.score(pooled.to(self.score.weight.dtype)).squeeze(1).float()  # [B]
        return HeadOutput(
            reward=reward,
            view_scores=reward[:, None],
            router_probs=torch.ones_like(reward)[:, None],
            router_entropy=torch.zeros_like(reward),
            representation=pooled.float(),
        )


class _FixedPoolHead(_PooledLinearHead):
    """A `_PooledLinearHead` on a view with no parameters (last token, mean)."""

    def __init__(self, hidden_size: int, bias: bool, backend: str):
        super().__init__(hidden_size, bias, backend)
        # The attention view is not read: its weight is a constant zero buffer, not a parameter.
        self.register_buffer("unused_attn_weight", torch.zeros(hidden_size), persistent=False)

    def pool(self, hidden, attention_mask, response_mask):
        return ops.multiview_pool(
            hidden, attention_mask, response_mask, attn_weight=self.unused_attn_weight, backend=self.backend
        )


class LastTokenHead(_FixedPoolHead):
    """Reward from the last response token: `score(hidden[b, τ_b])`, `τ_b` the last response token (the
    last real token when `response_mask` is None), for either padding side.

    With `bias=False` this is a transformers `*ForSequenceClassification` score head (`num_labels=1`):
    the linear is named `score`, so its `score.weight` loads as is.

    Args:
        hidden_size: `D`. bias: add a bias to the score. backend: `adajudge.ops` backend.
    """

    view = LAST

    def __init__(self, hidden_size: int, bias: bool = False, backend: str = "auto"):
        super().__init__(hidden_size, bias, backend)


class MeanPoolHead(_FixedPoolHead):
    """Reward from the mean of the response tokens' hidden states.

    Args:
        hidden_size: `D`. bias: add a bias to the score. backend: `adajudge.ops` backend.
    """

    view = MEAN

    def __init__(self, hidden_size: int, bias: bool = True, backend: str = "auto"):
        super().__init__(hidden_size, bias, backend)


class AttentionPoolHead(_PooledLinearHead):
    """Reward from learned attention pooling over the response tokens (`MultiViewPooling`'s attn view).

    Args:
        hidden_size: `D`. bias: add a bias to the score. backend: `adajudge.ops` backend.
    """

    view = ATTN

    def __init__(self, hidden_size: int, bias: bool = True, backend: str = "auto"):
        super().__init__(hidden_size, bias, backend)
        self.attention = MultiViewPooling(hidden_size, backend=backend)

    def pool(self, hidden, attention_mask, response_mask):
        return self.attention(hidden, attention_mask, response_mask)
