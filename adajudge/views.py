"""Named layouts shared by the ops, the kernels and the heads: the pooled views and the token classes.

`multiview_pool` returns `[B, 4, D]` with the views in `View` order; the scored views of `AdaJudgeHead`
are the first three (`SCORED_VIEWS`). The Triton kernels read a one-byte `TokenKind` per token.
"""
from enum import IntEnum


class View(IntEnum):
    """Index of each view along dim 1 of `multiview_pool`'s output."""

    LAST = 0  # hidden state of the last response token
    MEAN = 1  # mean over the response tokens
    ATTN = 2  # attention pooling over the response tokens
    PROMPT = 3  # mean over the prompt tokens


NUM_VIEWS = len(View)
SCORED_VIEWS = (View.LAST, View.MEAN, View.ATTN)


class TokenKind(IntEnum):
    """Class of a token: what `attention_mask` and `response_mask` say of it."""

    PADDING = 0
    PROMPT = 1  # real, not response
    RESPONSE = 2
