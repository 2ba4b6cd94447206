"""The pooling kernels' multi-split and D-tiled paths, which small inputs never reach with the default plan:
several splits per row for the fused kernels (which hold all of D), and a D tile narrower than D, which runs
the D-tiled kernels (two_phase's forward, the backward beyond RESIDENT_MAX_D); each checked to have been
taken, against the fp64 reference."""
import contextlib
import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from op_cases import DEVICE, LOW_PRECISION, check_against_reference

from adajudge.kernels import multiview_pool as pool
from adajudge.kernels.launch import force_tile_plan, record_launches
from adajudge.kernels.pool_forward import FORWARD_VARIANT_ENV, FORWARD_VARIANTS

FORCED_BLOCK_T, FORCED_BLOCK_D = 4, 16


@contextlib.contextmanager
def pool_forward(variant):
    """Run the block with the pooling forward variant `variant` (the private switch the bench uses)."""
    previous = os.environ.get(FORWARD_VARIANT_ENV)
    os.environ[FORWARD_VARIANT_ENV] = variant
    try:
        yield
    finally:
        if previous is None:
            del os.environ[FORWARD_VARIANT_ENV]
        else:
            os.environ[FORWARD_VARIANT_ENV] = previous


def _late_response_masks(batch, length, gen, left_padding):
    """Per row: a real span with the response only in its last few tokens (inside the row's last split)."""
    attention = torch.zeros(batch, length, dtype=torch.long)
    response = torch.zeros(batch, length, dtype=torch.long)
    for b in range(batch):
        real = int(torch.randint(length // 2, length + 1, (), generator=gen))
        tail = int(torch.randint(0, 4, (), generator=gen))  # 0: an empty response
        start = length - real if left_padding else 0
        attention[b, start : start + real] = 1
        response[b, start + real - tail : start + real] = 1
    return attention, response


# The two plans the tests force: the fused kernels with several splits per row, and D tiles narrower than D.
PLANS = {"fused": dict(block_t=FORCED_BLOCK_T, num_splits=None), "d_tiled": dict(block_t=FORCED_BLOCK_T, block_d=FORCED_BLOCK_D,
                                                                                    num_splits=None)}


def _assert_paths_taken(launches, dim, plan):
    names = [launch.name for launch in launches]
    backward = [launch for launch in launches if launch.name == "multiview_pool_bwd_kernel"]
    assert backward and "multiview_pool_combine_kernel" in names and "multiview_pool_dw_kernel" in names
    if plan == "fused":
        forward = [launch for launch in launches if launch.name == "multiview_pool_fwd_kernel"]
        assert forward and "multiview_pool_accumulate_kernel" not in names
        for launch in forward + backward:
            assert launch.arguments["num_splits"] > 1, "expected several token splits per row"
            assert launch.arguments["BLOCK_D"] >= dim, "expected the whole of D in one program"
        assert all(not launch.arguments["HAS_Q"] and launch.grid[1] == 1 for launch in backward)
    else:
        accumulate = [launch for launch in launches if launch.name == "multiview_pool_accumulate_kernel"]
        assert accumulate and "multiview_pool_fwd_kernel" not in names
        for launch in accumulate:
            assert launch.arguments["BLOCK_D"] < dim and launch.grid[0] > launch.arguments["num_splits"], "expected D tiles"
        for launch in backward:
            assert launch.arguments["HAS_Q"] and launch.grid[1] > 1, "expected D tiles in the backward"
        assert all(launch.arguments["num_splits"] > 1 for launch in accumulate + backward)


def _drawn_padded_case(data, dtype):
    """`(inputs, grad, dim)`: a drawn padded batch with prompt tokens and a late response in every row."""
    batch, length = data.draw(st.integers(1, 3)), data.draw(st.integers(13, 40))
    dim = data.draw(st.sampled_from([17, 40]))
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    attention, response = _late_response_masks(batch, length, gen, left_padding=data.draw(st.booleans()))
    inputs = {
        "hidden": torch.randn(batch, length, dim, generator=gen).to(dtype).to(DEVICE),
        "attention_mask": attention.to(DEVICE),
        "response_mask": response.to(DEVICE),
        "attn_weight": torch.randn(dim, generator=gen).to(dtype).to(DEVICE),
        "attn_bias": torch.randn((), generator=gen).to(dtype).to(DEVICE),
    }
    return inputs, torch.randn(batch, 4, dim, generator=gen).to(dtype).to(DEVICE), dim


@pytest.mark.parametrize("plan", PLANS)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_many_splits_and_d_tiles_match_reference(plan, dtype, data):
    inputs, grad, dim = _drawn_padded_case(data, dtype)
    with force_tile_plan(**PLANS[plan] | {"num_splits": data.draw(st.integers(2, 5))}), record_launches() as launches:
        check_against_reference(
            "multiview_pool", inputs, ["hidden", "attn_weight", "attn_bias"], [grad], "triton", dtype, [dtype]
        )
    _assert_paths_taken(launches, dim, plan)


@pytest.mark.parametrize("block_t", [1, 2])
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_fused_blocks_of_one_and_two_tokens_match_reference(block_t, dtype, data):
    """The fused forward's blocks of one token (bf16 from D = 4096 on) and of two (below): in 16-bit dtypes they
    add the prompt view token by token, each add predicated on the token's kind (`_add_selected_tokens`), in
    fp32 by a select and a sum; each block size and dtype with several splits per row, against the fp64
    reference."""
    inputs, grad, _ = _drawn_padded_case(data, dtype)
    with force_tile_plan(block_t=block_t, num_splits=data.draw(st.integers(2, 5))), record_launches() as launches:
        check_against_reference(
            "multiview_pool", inputs, ["hidden", "attn_weight", "attn_bias"], [grad], "triton", dtype, [dtype]
        )
    forward = [launch for launch in launches if launch.name == "multiview_pool_fwd_kernel"]
    assert forward and all(launch.arguments["BLOCK_T"] == block_t for launch in forward)


@pytest.mark.parametrize("plan", PLANS)
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_packed_rows_with_empty_rows_and_empty_splits_match_reference(plan, data):
    lengths = data.draw(st.lists(st.integers(0, 30), min_size=2, max_size=5).filter(lambda xs: max(xs) >= 13))
    dim = data.draw(st.sampled_from([17, 40]))
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    total = sum(lengths)
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()],
                              dtype=data.draw(st.sampled_from([torch.int32, torch.int64])))
    inputs = {
        "hidden": torch.randn(total, dim, generator=gen).to(DEVICE),
        "attention_mask": torch.ones(total, dtype=torch.long, device=DEVICE),
        "response_mask": (torch.rand(total, generator=gen) > 0.5).long().to(DEVICE),
        "attn_weight": torch.randn(dim, generator=gen).to(DEVICE),
    }
    grad = torch.randn(len(lengths), 4, dim, generator=gen).to(DEVICE)
    with force_tile_plan(**PLANS[plan] | {"num_splits": 4}), record_launches() as launches:
        check_against_reference(
            "multiview_pool", inputs, ["hidden", "attn_weight"], [grad], "triton", torch.float32, [torch.float32],
            cu_seqlens=cu_seqlens.to(DEVICE), max_seqlen=max(lengths),
        )
    _assert_paths_taken(launches, dim, plan)  # short rows: their later splits are empty


@pytest.mark.parametrize("forward_variant", FORWARD_VARIANTS)
def test_the_switch_picks_the_forward_design(forward_variant):
    """`ADAJUDGE_POOL_FORWARD` chooses the fused kernel or two_phase's scores + D-tiled accumulation."""
    inputs = {"hidden": torch.randn(2, 9, 24, device=DEVICE), "attention_mask": torch.ones(2, 9, dtype=torch.long, device=DEVICE),
              "attn_weight": torch.randn(24, device=DEVICE)}
    with pool_forward(forward_variant), record_launches() as launches:
        check_against_reference("multiview_pool", inputs, ["hidden", "attn_weight"], [torch.randn(2, 4, 24, device=DEVICE)],
                                "triton", torch.float32, [torch.float32])
    names = {launch.name for launch in launches}
    if forward_variant == "fused":
        assert "multiview_pool_fwd_kernel" in names and "multiview_pool_accumulate_kernel" not in names
    else:
        assert {"multiview_pool_scores_kernel", "multiview_pool_accumulate_kernel"} <= names
        assert "multiview_pool_fwd_kernel" not in names


@pytest.mark.slow
@pytest.mark.parametrize("dim", [576, 2048])
@pytest.mark.parametrize(("backend", "forward_variant"), [("torch", "fused"), ("triton", "fused"), ("triton", "two_phase")])
def test_realistic_sizes_match_reference(dim, backend, forward_variant):
    """T = 1024 tokens at hidden sizes of real backbones (SmolLM2-135M: 576), in bf16, with the default plan."""
    batch, length = 2, 1024
    gen = torch.Generator().manual_seed(dim)
    attention, response = _late_response_masks(batch, length, gen, left_padding=False)
    response[1, length // 3 :] = attention[1, length // 3 :]  # one long response, one short late one
    inputs = {
        "hidden": torch.randn(batch, length, dim, generator=gen).to(torch.bfloat16).to(DEVICE),
        "attention_mask": attention.to(DEVICE),
        "response_mask": response.to(DEVICE),
        "attn_weight": (torch.randn(dim, generator=gen) * dim**-0.5).to(torch.bfloat16).to(DEVICE),
        "attn_bias": torch.zeros((), dtype=torch.bfloat16, device=DEVICE),
    }
    grad = torch.randn(batch, 4, dim, generator=gen).to(torch.bfloat16).to(DEVICE)
    with pool_forward(forward_variant), record_launches() as launches:
        check_against_reference(
            "multiview_pool", inputs, ["hidden", "attn_weight", "attn_bias"], [grad], backend, torch.bfloat16, [torch.bfloat16]
        )
    if backend == "triton":  # the default plan: the fused kernels hold all of D; two_phase tiles it
        forward = [launch for launch in launches
                   if launch.name in ("multiview_pool_fwd_kernel", "multiview_pool_accumulate_kernel")]
        assert forward and all((launch.arguments["BLOCK_D"] >= dim) == (forward_variant == "fused") for launch in forward)


@pytest.mark.parametrize("forward_variant", FORWARD_VARIANTS)
@pytest.mark.parametrize("plan", [{}, {"num_splits": 3, "block_t": FORCED_BLOCK_T, "block_d": FORCED_BLOCK_D}],
                         ids=["default", "splits_and_d_tiles"])
def test_kinds_in_either_dtype_give_the_same_bits(forward_variant, plan):
    """The kind map is int8 under Triton 3.9 and int32 before (`KINDS_DTYPE`, a ptxas 12.8 workaround): every
    kernel, forward and backward, fused and D-tiled, reads either and computes the very same values."""
    gen = torch.Generator().manual_seed(17)
    hidden = torch.randn(3, 40, 24, generator=gen).to(DEVICE)
    attention, response = _late_response_masks(3, 40, gen, left_padding=True)
    response[0, 5:30] = attention[0, 5:30]  # a response span crossing splits; the others are late and short
    kinds = pool.token_kinds(attention.to(DEVICE), response.to(DEVICE))
    weight, bias = torch.randn(24, generator=gen).to(DEVICE), torch.randn((), generator=gen).to(DEVICE)
    grad_views = torch.randn(3, 4, 24, generator=gen).to(DEVICE)
    results = []
    with pool_forward(forward_variant), force_tile_plan(**plan):
        for dtype in (torch.int8, torch.int32):
            views, scores, *saved = pool.multiview_pool_fwd(hidden, kinds.to(dtype), weight, bias, None, 0)
            grads = pool.multiview_pool_bwd(grad_views, hidden, kinds.to(dtype), scores, None, weight, *saved, 0, True)
            results.append([views, scores, *saved, *grads])
    for name, int8_result, int32_result in zip(["views", "scores", "z_attn", "lse", "counts", "last_index", "d_hidden",
                                                "d_attn_weight", "d_attn_bias"], *results):
        assert torch.equal(int8_result, int32_result), name
