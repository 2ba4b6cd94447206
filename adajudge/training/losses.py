"""Choosing a preference loss by name.

Every loss is an `adajudge.nn.PairLoss`: training applies it to a stacked (chosen rows first) head output
`output` as `loss_fn.pair_loss(*output.split_pairs(), margin=..., weights=...)`, whatever the loss.
"""

from adajudge.nn import AdaJudgeLoss, BTLoss, FocalBTLoss, NormBTLoss, PairLoss

LOSSES = {"bt": BTLoss, "focal": FocalBTLoss, "normbt": NormBTLoss, "adajudge": AdaJudgeLoss}


def build_loss(kind: str, **options) -> PairLoss:
    """The loss module named `kind` ("bt", "focal", "normbt", "adajudge"), built with `options`."""
    if kind not in LOSSES:
        raise ValueError(f"loss: expected one of {sorted(LOSSES)}, got {kind!r}")
    return LOSSES[kind](**options)
