"""`build_head`: a reward head from a kind name and JSON-able options (what a model config stores)."""
from torch import nn

from adajudge.nn.heads import AdaJudgeHead
from adajudge.nn.static_heads import AttentionPoolHead, LastTokenHead, MeanPoolHead

HEADS = {"adajudge": AdaJudgeHead, "last": LastTokenHead, "mean": MeanPoolHead, "attn": AttentionPoolHead}


def build_head(kind: str, hidden_size: int, **options) -> nn.Module:
    """Build the head `kind` ("adajudge", "last", "mean" or "attn") for `hidden_size`, passing `options` to
    its constructor (e.g. `build_head("adajudge", 576, num_blocks=2)`).

    Raises:
        ValueError: unknown `kind`. TypeError: an option the head does not take.
    """
    if kind not in HEADS:
        raise ValueError(f"kind: expected one of {sorted(HEADS)}, got {kind!r}")
    return HEADS[kind](hidden_size, **options)
