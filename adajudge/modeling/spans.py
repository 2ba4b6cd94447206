"""Which tokens are the response when a reward model is called without a `response_mask`."""
from __future__ import annotations

import torch


def scored_span_mask(
    input_ids: torch.Tensor | None, attention_mask: torch.Tensor, pad_token_id: int | None
) -> torch.Tensor:
    """`[B, T]` int64 mask of the real tokens up to and including the token a transformers
    `*ForSequenceClassification` scores.

    transformers 5 (`GenericForSequenceClassification.forward`) scores the rightmost position whose id is
    not `pad_token_id`, `argmax(arange(T) * (input_ids != pad))`, whatever the attention mask and padding
    side, and the last position when there is no pad token. So with pad = EOS and a trailing EOS, the token
    *before* the EOS is scored. Without `input_ids` or without a pad token, every real token is in the span.

    Args:
        input_ids: `[B, T]` or None. attention_mask: `[B, T]` 0/1. pad_token_id: the config's pad id or None.
    """
    real = attention_mask.long()
    if input_ids is None or pad_token_id is None:
        return real
    positions = torch.arange(input_ids.shape[-1], device=input_ids.device)
    scored = (positions * (input_ids != pad_token_id).long()).argmax(-1)  # [B], transformers' rule
    return real * (positions[None, :] <= scored[:, None]).long()
