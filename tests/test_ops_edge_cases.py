"""Edge cases that once gave wrong numbers, on every backend (reference, the fused PyTorch path, Triton):
a `max_seqlen` below the longest packed row, NaN and Inf outside a view, the BT loss far in its tail, value
checks that must cost nothing when they are off, a duplicated NormBT pair, and a loss over no pairs."""
import importlib

import pytest
import torch
import torch.nn.functional as F
from op_cases import BACKENDS, DEVICE, LOW_PRECISION, check_against_reference, run_with_grads
from torch.utils._python_dispatch import TorchDispatchMode

from adajudge import ops
from adajudge.kernels.launch import force_tile_plan, record_launches
from adajudge.reference.preference_loss import NORMBT_MAX_FACTOR
from adajudge.testing import RESOLUTION
from adajudge.views import View

EVERY_BACKEND = ["reference", *BACKENDS]
POOL_GRADIENTS = ["hidden", "attn_weight", "attn_bias"]


def _packed_rows(lengths, dim, seed=0):
    gen = torch.Generator().manual_seed(seed)
    total = sum(lengths)
    inputs = {
        "hidden": torch.randn(total, dim, generator=gen).to(DEVICE),
        "attention_mask": torch.ones(total, dtype=torch.long, device=DEVICE),
        "response_mask": (torch.rand(total, generator=gen) > 0.3).long().to(DEVICE),
        "attn_weight": torch.randn(dim, generator=gen).to(DEVICE),
        "attn_bias": torch.randn((), generator=gen).to(DEVICE),
    }
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device=DEVICE)
    return inputs, cu_seqlens, torch.randn(len(lengths), 4, dim, generator=gen).to(DEVICE)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("max_seqlen", [0, 1, 8])
def test_a_max_seqlen_below_the_longest_row_drops_no_token(backend, max_seqlen, monkeypatch):
    """With value checks off (as under torch.compile and CUDA graphs) a too-small `max_seqlen` still gives
    every view and every gradient row: the last split of a row runs to its end."""
    monkeypatch.setenv("ADAJUDGE_CHECK_VALUES", "0")
    inputs, cu_seqlens, grad = _packed_rows([30, 5, 0, 17], 24)
    with record_launches() as launches:
        check_against_reference("multiview_pool", inputs, POOL_GRADIENTS, [grad], backend, torch.float32, [torch.float32],
                                cu_seqlens=cu_seqlens, max_seqlen=max_seqlen)
    if backend == "triton":  # the launches were planned from the small max_seqlen
        assert {launch.arguments["max_len"] for launch in launches if "max_len" in launch.arguments} == {max_seqlen}


def test_a_max_seqlen_below_the_longest_row_drops_no_token_across_several_splits(monkeypatch):
    """The same on the Triton path with several splits per row, so the rows' tails land in their last split."""
    monkeypatch.setenv("ADAJUDGE_CHECK_VALUES", "0")
    inputs, cu_seqlens, grad = _packed_rows([30, 5, 0, 17], 24, seed=1)
    with force_tile_plan(block_t=4, block_d=16, num_splits=2), record_launches() as launches:
        check_against_reference("multiview_pool", inputs, POOL_GRADIENTS, [grad], "triton", torch.float32, [torch.float32],
                                cu_seqlens=cu_seqlens, max_seqlen=8)
    assert all(launch.arguments["num_splits"] == 2 for launch in launches if "num_splits" in launch.arguments)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_a_max_seqlen_below_the_longest_row_is_refused_by_the_value_checks(backend):
    inputs, cu_seqlens, _ = _packed_rows([30, 5], 8)
    with pytest.raises(ValueError, match="max_seqlen: expected at least the longest packed row \\(30\\), got 8"):
        ops.multiview_pool(**inputs, cu_seqlens=cu_seqlens, max_seqlen=8, backend=backend)


def _poisoned_pooling_inputs(dtype, packed):
    """Clean inputs, and a copy whose padding tokens hold NaN, +Inf and -Inf: both give the same views."""
    gen = torch.Generator().manual_seed(7)
    batch, length, dim = 3, 10, 24
    attention = torch.ones(batch, length, dtype=torch.long)
    attention[0, 7:] = 0  # right padding
    attention[1, :4] = 0  # left padding
    attention[2, 3:5] = 0  # holes
    response = attention.clone()
    response[:, :5] = 0
    hidden = torch.randn(batch, length, dim, generator=gen)
    poisoned = hidden.clone()
    padding = ~attention.bool()
    poisoned[padding] = torch.tensor([float("nan"), float("inf"), -float("inf")]).repeat(dim)[:dim]
    common = {"attention_mask": attention, "response_mask": response, "attn_weight": torch.randn(dim, generator=gen),
              "attn_bias": torch.randn((), generator=gen)}
    options = {}
    if packed:  # rows of 10 tokens, whose attention_mask zeros are the tokens outside every view
        common = {**common, "attention_mask": attention.flatten(), "response_mask": response.flatten()}
        hidden, poisoned = hidden.flatten(0, 1), poisoned.flatten(0, 1)
        options = {"cu_seqlens": torch.arange(0, batch * length + 1, length, dtype=torch.int32, device=DEVICE),
                   "max_seqlen": length}
    to = lambda x: x.to(dtype).to(DEVICE) if x.is_floating_point() else x.to(DEVICE)
    clean = {"hidden": to(hidden), **{k: to(v) for k, v in common.items()}}
    return clean, {**clean, "hidden": to(poisoned)}, torch.randn(batch, 4, dim, generator=gen).to(dtype).to(DEVICE), options


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_nan_and_inf_in_padding_tokens_change_nothing(backend, dtype, packed):
    clean, poisoned, grad, options = _poisoned_pooling_inputs(dtype, packed)
    call = lambda **kw: ops.multiview_pool(**kw, **options, backend=backend)
    expected_views, expected_grads = run_with_grads(call, clean, POOL_GRADIENTS, [grad])
    views, grads = run_with_grads(call, poisoned, POOL_GRADIENTS, [grad])
    torch.testing.assert_close(views[0], expected_views[0], rtol=0, atol=0)
    for name, actual, expected in zip(POOL_GRADIENTS, grads, expected_grads):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0, msg=f"d_{name}")


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
def test_a_nan_prompt_token_reaches_only_the_prompt_view(backend, dtype):
    """Tokens outside a view never influence it: NaN in the prompt leaves the last, mean and attention views
    and every gradient but nothing else; the prompt view, which reads it, is NaN."""
    clean, _, grad, _ = _poisoned_pooling_inputs(dtype, packed=False)
    poisoned = {**clean, "hidden": clean["hidden"].clone()}
    poisoned["hidden"][2, 1] = float("nan")  # a prompt token of row 2
    call = lambda **kw: ops.multiview_pool(**kw, backend=backend)
    expected_views, expected_grads = run_with_grads(call, clean, POOL_GRADIENTS, [grad])
    views, grads = run_with_grads(call, poisoned, POOL_GRADIENTS, [grad])
    assert torch.isnan(views[0][2, View.PROMPT]).all()
    views[0][2, View.PROMPT] = expected_views[0][2, View.PROMPT]
    torch.testing.assert_close(views[0], expected_views[0], rtol=0, atol=0)
    for name, actual, expected in zip(POOL_GRADIENTS, grads, expected_grads):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0, msg=f"d_{name}")


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
def test_a_nan_response_token_stays_out_of_the_prompt_and_last_views(backend, dtype):
    """The mirror case: NaN in a response token that is not the last makes its row's mean and attention views
    NaN (they read it) and leaves its last and prompt views, and every other row, as they were."""
    clean, _, _, _ = _poisoned_pooling_inputs(dtype, packed=False)
    poisoned = {**clean, "hidden": clean["hidden"].clone()}
    poisoned["hidden"][2, 6] = float("nan")  # row 2: prompt tokens 0-2, response 5-9
    expected = ops.multiview_pool(**clean, backend=backend)
    views = ops.multiview_pool(**poisoned, backend=backend)
    assert torch.isnan(views[2, [View.MEAN, View.ATTN]]).all()
    views[2, [View.MEAN, View.ATTN]] = expected[2, [View.MEAN, View.ATTN]]
    torch.testing.assert_close(views, expected, rtol=0, atol=0)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("delta", [1.0, 5.0, 15.0, 30.0, 60.0])
def test_bt_loss_far_in_its_tail_keeps_its_value(backend, delta):
    """softplus(−Δ) = log1p(e^−Δ): at Δ = 30 that is 9.4e-14, which log(1 + e^−Δ) rounds to exactly 0 in fp32.
    Beside the suite's rule (which an absolute floor makes loose here), loss and gradient must be within the
    fp32 resolution of the fp64 value, relative to it."""
    inputs = {"chosen": torch.tensor([delta], device=DEVICE), "rejected": torch.zeros(1, device=DEVICE)}
    upstream = [torch.ones(1, device=DEVICE)]
    check_against_reference("preference_loss", inputs, ["chosen"], upstream, backend, torch.float32, [torch.float32],
                            reduction="none")
    (loss,), (d_chosen,) = run_with_grads(lambda **kw: ops.preference_loss(**kw, reduction="none", backend=backend),
                                          inputs, ["chosen"], upstream)
    exact = torch.tensor(-delta, dtype=torch.float64)
    for actual, expected in ((loss, F.softplus(exact)), (d_chosen, -torch.sigmoid(exact))):
        assert actual.item() != 0.0
        assert abs(actual.item() - expected.item()) <= RESOLUTION[torch.float32] * abs(expected.item())


class DispatchedOps(TorchDispatchMode):
    """Records the name of every aten op dispatched inside the block."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_value_checks_launch_nothing_when_off(backend, packed, monkeypatch):
    """Every value check ends in an `any` reduction; with the checks off none runs, while the op itself still
    does (the control: with the checks on, they do run)."""
    inputs, cu_seqlens, _ = _packed_rows([6, 3, 9], 16)
    options = {"cu_seqlens": cu_seqlens, "max_seqlen": 9}
    if not packed:
        inputs = {**inputs, "hidden": inputs["hidden"].reshape(2, 9, 16),
                  **{name: inputs[name].reshape(2, 9) for name in ("attention_mask", "response_mask")}}
        options = {}
    seen = {}
    for checks in ("1", "0"):
        monkeypatch.setenv("ADAJUDGE_CHECK_VALUES", checks)
        with DispatchedOps() as mode:
            ops.multiview_pool(**inputs, **options, backend=backend)
        seen[checks] = mode.names
    assert "any" in seen["1"] and seen["0"]
    assert "any" not in seen["0"], seen["0"]


def test_value_checks_of_the_heads_launch_nothing_when_off(monkeypatch):
    validation = importlib.import_module("adajudge.validation")
    hidden, mask = torch.randn(2, 5, 8, device=DEVICE), torch.ones(2, 5, dtype=torch.long, device=DEVICE)
    monkeypatch.setenv("ADAJUDGE_CHECK_VALUES", "0")
    with DispatchedOps() as mode:
        validation.check_head_inputs(hidden, mask, mask, 8)
    assert mode.names == []


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
@pytest.mark.parametrize("norm_scale", [None, 1.5])
def test_a_duplicated_normbt_pair_is_weighed_at_most_the_cap(backend, dtype, norm_scale):
    """Identical chosen and rejected representations (distance 0) would weigh μ/ε ≈ 10⁶ (a loss of ~10⁶ in
    fp32, inf gradients in fp16); the factor is capped at `NORMBT_MAX_FACTOR` on every backend."""
    gen = torch.Generator().manual_seed(3)
    reprs = torch.randn(2, 6, 32, generator=gen)
    reprs[1, 2] = reprs[0, 2]  # pair 2 duplicated
    rewards = torch.randn(2, 6, generator=gen)
    inputs = {name: value.to(dtype).to(DEVICE) for name, value in
              (("chosen", rewards[0]), ("rejected", rewards[1]), ("chosen_repr", reprs[0]), ("rejected_repr", reprs[1]))}
    upstream = torch.randn(6, generator=gen).to(DEVICE) * 100  # large, as a summed loss's gradient can be
    options = {"reduction": "none"} | ({"norm_scale": norm_scale} if norm_scale is not None else {})
    check_against_reference("preference_loss", inputs, ["chosen", "rejected"], [upstream], backend, dtype, [torch.float32],
                            **options)
    loss = ops.preference_loss(**inputs, **options, backend=backend)
    delta = (inputs["chosen"][2].double() - inputs["rejected"][2].double())
    assert loss[2].item() == pytest.approx(NORMBT_MAX_FACTOR * F.softplus(-delta).item(), rel=1e-5)


@pytest.mark.parametrize("backend", EVERY_BACKEND)
@pytest.mark.parametrize("normbt", [False, True], ids=["bt", "normbt"])
def test_a_loss_over_no_pairs(backend, normbt):
    chosen, rejected = torch.empty(0, device=DEVICE, requires_grad=True), torch.empty(0, device=DEVICE)
    reprs = {"chosen_repr": torch.empty(0, 8, device=DEVICE), "rejected_repr": torch.empty(0, 8, device=DEVICE)} if normbt else {}
    per_pair = ops.preference_loss(chosen, rejected, **reprs, gamma=2.0, reduction="none", backend=backend)
    assert per_pair.shape == (0,) and per_pair.dtype == torch.float32
    total = ops.preference_loss(chosen, rejected, **reprs, gamma=2.0, reduction="sum", backend=backend)
    assert total.shape == () and total.item() == 0.0
    total.backward()
    assert chosen.grad.shape == (0,)
    with pytest.raises(ValueError, match="chosen: expected at least one pair for reduction='mean'"):
        ops.preference_loss(chosen, rejected, **reprs, backend=backend)
