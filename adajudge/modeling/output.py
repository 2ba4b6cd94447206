"""`AdaJudgeRewardOutput`: the one output type of adajudge's transformers models, carrying the head's `HeadOutput`.

Both `AdaJudgeForRewardModeling` and a model changed by `replace_reward_head` return it. It is a
`SequenceClassifierOutputWithPast` (`logits [B, 1]`, the `*ForSequenceClassification` reward-model
convention with `num_labels=1`) whose other fields are those of `adajudge.nn.HeadOutput` under the same
names; `from_head` and `head_output` convert between the two, and nowhere else does.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from transformers.modeling_outputs import SequenceClassifierOutputWithPast

from adajudge.nn import HeadOutput

# The HeadOutput fields carried as they are (`reward [B]` travels as `logits [B, 1]`).
HEAD_FIELDS = tuple(field.name for field in dataclasses.fields(HeadOutput) if field.name != "reward")


@dataclass
class AdaJudgeRewardOutput(SequenceClassifierOutputWithPast):
    """Output of adajudge's reward models for `B` sequences (`V` views: 3 for "adajudge", 1 otherwise).

    Attributes:
        loss: set only by a `replace_reward_head` model called with `labels` (transformers' loss).
        logits: `[B, 1]` fp32, the reward.
        past_key_values, hidden_states, attentions: the backbone's, as in transformers (when asked for).
        view_scores: `[B, V]` fp32, the score of each pooled view.
        router_probs: `[B, V]` fp32, the router's mixture weights (ones for static heads).
        router_entropy: `[B]` fp32, entropy of `router_probs` in nats (zeros for static heads).
        representation: `[B, D]` fp32, the pooled vector behind the reward (used by NormBT).
    """

    view_scores: torch.Tensor | None = None
    router_probs: torch.Tensor | None = None
    router_entropy: torch.Tensor | None = None
    representation: torch.Tensor | None = None

    @classmethod
    def from_head(cls, head_output: HeadOutput, **model_fields) -> AdaJudgeRewardOutput:
        """The output for `head_output` (`reward [B]` becomes `logits [B, 1]`); `model_fields`: `loss`,
        `hidden_states`, ... as in `SequenceClassifierOutputWithPast`."""
        head_fields = {name: getattr(head_output, name) for name in HEAD_FIELDS}
        return cls(logits=head_output.reward[:, None], **head_fields, **model_fields)

    def head_output(self) -> HeadOutput:
        """The head's `HeadOutput` (`logits [B, 1]` becomes `reward [B]`; tensors are views, not copies)."""
        return HeadOutput(reward=self.logits.squeeze(-1), **{name: getattr(self, name) for name in HEAD_FIELDS})
