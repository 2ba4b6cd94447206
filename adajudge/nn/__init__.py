"""Reward-model heads and preference losses (docs/design.md §5–§6), built on `adajudge.ops`.

Heads map a backbone's last hidden states `[B, T, D]` and masks `[B, T]` to a `HeadOutput`:
`AdaJudgeHead` (refinement, depth gate, multi-view pooling, per-view scorers, router) and the static
baselines `LastTokenHead`, `MeanPoolHead`, `AttentionPoolHead`; `build_head(kind, hidden_size, **options)`
builds one by name. Losses: `BTLoss`, `FocalBTLoss`, `NormBTLoss` on reward tensors, `AdaJudgeLoss` on
`HeadOutput`s; all four are `PairLoss`es, whose `pair_loss(chosen, rejected)` takes the two sides'
`HeadOutput`s (what training calls). Every module takes `backend=` ("auto", "triton", "torch",
"reference") for its ops.
"""
from adajudge.nn.build import build_head
from adajudge.nn.heads import AdaJudgeHead
from adajudge.nn.losses import AdaJudgeLoss, BTLoss, FocalBTLoss, NormBTLoss, PairLoss
from adajudge.nn.output import HeadOutput
from adajudge.nn.pooling import MultiViewPooling
from adajudge.nn.static_heads import AttentionPoolHead, LastTokenHead, MeanPoolHead

__all__ = [
    "MultiViewPooling",
    "AdaJudgeHead",
    "LastTokenHead",
    "MeanPoolHead",
    "AttentionPoolHead",
    "HeadOutput",
    "PairLoss",
    "BTLoss",
    "FocalBTLoss",
    "NormBTLoss",
    "AdaJudgeLoss",
    "build_head",
]
