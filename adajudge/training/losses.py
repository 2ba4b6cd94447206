"""Choosing a preference loss by name and applying it to a stacked (chosen rows first) head output.

One place that knows which loss takes what: `AdaJudgeLoss` takes the two `HeadOutput`s, `NormBTLoss` the
rewards and the representations, `BTLoss` / `FocalBTLoss` the rewards only.
"""

import torch
from torch import nn

from adajudge.nn import AdaJudgeLoss, BTLoss, FocalBTLoss, HeadOutput, NormBTLoss

LOSSES = {"bt": BTLoss, "focal": FocalBTLoss, "normbt": NormBTLoss, "adajudge": AdaJudgeLoss}


def build_loss(kind: str, **options) -> nn.Module:
    """The loss module named `kind` ("bt", "focal", "normbt", "adajudge"), built with `options`."""
    if kind not in LOSSES:
        raise ValueError(f"loss: expected one of {sorted(LOSSES)}, got {kind!r}")
    return LOSSES[kind](**options)


def head_output_from_model(outputs) -> HeadOutput:
    """The `HeadOutput` inside an `AdaJudgeForRewardModeling` output (`logits [B, 1]` becomes `reward [B]`)."""
    return HeadOutput(
        reward=outputs.logits.squeeze(-1),
        view_scores=outputs.view_scores,
        router_probs=outputs.router_probs,
        router_entropy=outputs.router_entropy,
        representation=outputs.representation,
    )


def pair_loss(loss_fn: nn.Module, output: HeadOutput, *, margin=None, weight=None) -> torch.Tensor:
    """Scalar fp32 loss of `loss_fn` on a stacked head output (`[2N]` rows, chosen first).

    `margin` / `weight`: `[N]` or None, passed through to the loss.
    """
    chosen, rejected = output.split_pairs()
    if isinstance(loss_fn, AdaJudgeLoss):
        return loss_fn(chosen, rejected, margin=margin, weights=weight)
    if isinstance(loss_fn, NormBTLoss):
        return loss_fn(
            chosen.reward,
            rejected.reward,
            margin=margin,
            weights=weight,
            chosen_repr=chosen.representation,
            rejected_repr=rejected.representation,
        )
    return loss_fn(chosen.reward, rejected.reward, margin=margin, weights=weight)
