"""Hypothesis strategies of valid inputs for the ops of `adajudge.ops` (needs `pip install 'adajudge[testing]'`).

Each strategy draws `Case`s: the arguments of one call, the inputs whose gradients are compared and random
upstream gradients (see `adajudge.testing.cases` for what the draws cover). Check a function on one with
`adajudge.testing.check_case(fn, case)`, or let `adajudge.testing.check_op` draw them. A failing case
shrinks towards one row, few tokens, D = 1, contiguous fp32-like layouts and seed 0.

    from hypothesis import given
    from adajudge.testing import check_case, strategies

    @given(strategies.multiview_pool_cases(dtype=torch.bfloat16, layout="packed"))
    def test_my_pooling(case):
        check_case(my_multiview_pool, case)
"""
import torch
from hypothesis import strategies as st

from adajudge.testing.cases import DTYPES, Case, op_spec, padded_masks


class HypothesisChoices:
    """`Choices` drawn by hypothesis, so that a failing case shrinks."""

    def __init__(self, draw):
        self._draw = draw

    def integer(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))

    def boolean(self) -> bool:
        return self._draw(st.booleans())

    def sample(self, options):
        return self._draw(st.sampled_from(options))

    def real(self, low: float, high: float) -> float:
        return self._draw(st.floats(low, high, allow_nan=False, allow_infinity=False))


@st.composite
def cases(draw, op: str, *, dtype: torch.dtype | None = None, layout: str | None = None, device="cpu") -> Case:
    """Valid `Case`s of `op` (`"multiview_pool"`, `"router_mix"` or `"preference_loss"`) on `device`. `dtype`:
    one float dtype, or None for any of fp32, bf16, fp16, fp64. `layout`: one of the op's layouts (pooling:
    `"padded"` or `"packed"`; the others: `"dense"`), or None for any."""
    spec = op_spec(op)
    dtype = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
    layout = draw(st.sampled_from(spec.layouts)) if layout is None else layout
    return spec.build(HypothesisChoices(draw), dtype, layout).to(device)


def multiview_pool_cases(*, dtype=None, layout=None, device="cpu"):
    """`multiview_pool` cases: padded (either padding side, any 0/1 pattern, empty responses, empty prompts,
    rows of padding only) and packed (`cu_seqlens` int32/int64, empty rows, `max_seqlen` exact, omitted or
    larger); masks in five integer/bool dtypes; strided `hidden`, masks, `attn_weight`, `cu_seqlens` and
    upstream gradients; `attn_bias` absent, scalar or `[1]`; frozen `hidden`; hidden states ×100 (bf16, fp16);
    attention weights ×4 and bias ×30 (scores up to ±100: a saturated attention softmax); padding tokens holding NaN or Inf."""
    return cases("multiview_pool", dtype=dtype, layout=layout, device=device)


def router_mix_cases(*, dtype=None, device="cpu"):
    """`router_mix` cases: 1..150 rows, 1..5 views, temperature in [0.1, 5], logits up to ×300 (a saturated
    router), strided logits, scores and upstream gradients."""
    return cases("router_mix", dtype=dtype, device=device)


def preference_loss_cases(*, dtype=None, device="cpu"):
    """`preference_loss` cases: 1..100 pairs (none for "sum" and "none"), rewards up to ×100, margins,
    weights, temperature, focal γ, centering, every reduction, NormBT (D in {1, 7, 64, 100}; a duplicated
    pair; μ the batch mean, a float or a tensor), strided rewards and representations."""
    return cases("preference_loss", dtype=dtype, device=device)


@st.composite
def pooling_masks(draw, batch: int, length: int):
    """`(attention_mask, response_mask)` `[B, T]` int64: per row a right- or left-padded prompt + response
    (either may be empty, the row may be all padding), or any pattern of padding, prompt and response."""
    return padded_masks(HypothesisChoices(draw), batch, length)
