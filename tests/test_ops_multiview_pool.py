"""multiview_pool: every backend against the reference (forward and every gradient), and its contracts."""
import functools

import pytest
import torch
from op_cases import BACKENDS, DEVICE, LOW_PRECISION, check_against_reference

from adajudge.ops import multiview_pool
from adajudge.testing import check_op, run_with_grads

EXAMPLES_PER_LAYOUT = 15  # × 2 layouts: 30 drawn cases per backend and dtype


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", LOW_PRECISION, ids=str)
def test_matches_reference(backend, dtype):
    """Padded (either side, any 0/1 pattern) and packed inputs of the kit's strategies: forward and every
    gradient against the fp64 reference."""
    results = check_op(functools.partial(multiview_pool, backend=backend), "multiview_pool", device=DEVICE, dtypes=[dtype],
                       examples=EXAMPLES_PER_LAYOUT)
    assert [(r.layout, r.cases) for r in results] == [("padded", EXAMPLES_PER_LAYOUT), ("packed", EXAMPLES_PER_LAYOUT)]


def packed_case(lengths, dim, seed=0):
    gen = torch.Generator().manual_seed(seed)
    total, batch, longest = sum(lengths), len(lengths), max(lengths)
    hidden = torch.randn(total, dim, generator=gen)
    response = (torch.rand(total, generator=gen) > 0.4).long()
    cu_seqlens = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    padded = torch.zeros(batch, longest, dim)
    attention = torch.zeros(batch, longest, dtype=torch.long)
    padded_response = torch.zeros(batch, longest, dtype=torch.long)
    for b, (start, end) in enumerate(zip(cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist())):
        padded[b, : end - start] = hidden[start:end]
        attention[b, : end - start] = 1
        padded_response[b, : end - start] = response[start:end]
    weight = torch.randn(dim, generator=gen)
    return (hidden, torch.ones(total, dtype=torch.long), response, cu_seqlens), (padded, attention, padded_response), weight


@pytest.mark.parametrize("backend", BACKENDS)
def test_packed_equals_padded(backend):
    (hidden, attention, response, cu), (padded, pad_attention, pad_response), weight = packed_case([5, 1, 0, 13, 7], 24)
    bias = torch.tensor(0.2)
    grad = torch.randn(5, 4, 24)
    packed_out, packed_grads = run_with_grads(
        lambda **kw: multiview_pool(**kw, cu_seqlens=cu.to(DEVICE), backend=backend),
        {"hidden": hidden.to(DEVICE), "attention_mask": attention.to(DEVICE), "response_mask": response.to(DEVICE),
         "attn_weight": weight.to(DEVICE), "attn_bias": bias.to(DEVICE)},
        ["hidden", "attn_weight", "attn_bias"], [grad.to(DEVICE)],
    )
    padded_out, padded_grads = run_with_grads(
        lambda **kw: multiview_pool(**kw, backend=backend),
        {"hidden": padded.to(DEVICE), "attention_mask": pad_attention.to(DEVICE), "response_mask": pad_response.to(DEVICE),
         "attn_weight": weight.to(DEVICE), "attn_bias": bias.to(DEVICE)},
        ["hidden", "attn_weight", "attn_bias"], [grad.to(DEVICE)],
    )
    torch.testing.assert_close(packed_out[0], padded_out[0], rtol=1e-5, atol=1e-6)
    flat_padded_grad = padded_grads[0][pad_attention.bool().to(DEVICE)]
    torch.testing.assert_close(packed_grads[0], flat_padded_grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(packed_grads[1], padded_grads[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(packed_grads[2], padded_grads[2], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_row_alone_equals_row_in_batch(backend):
    gen = torch.Generator().manual_seed(1)
    hidden = torch.randn(6, 30, 48, generator=gen).to(DEVICE)
    attention = torch.ones(6, 30, dtype=torch.long, device=DEVICE)
    attention[2, 25:] = 0
    response = attention.clone()
    response[:, :9] = 0
    weight = torch.randn(48, generator=gen).to(DEVICE)
    batch = multiview_pool(hidden, attention, response, attn_weight=weight, backend=backend)
    alone = multiview_pool(hidden[2:3], attention[2:3], response[2:3], attn_weight=weight, backend=backend)
    torch.testing.assert_close(alone[0], batch[2], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_left_and_right_padding_give_the_same_views(backend):
    gen = torch.Generator().manual_seed(2)
    tokens, pad, dim = 11, 5, 32
    real = torch.randn(tokens, dim, generator=gen)
    right = torch.cat([real, torch.randn(pad, dim, generator=gen)])[None].to(DEVICE)
    left = torch.cat([torch.randn(pad, dim, generator=gen), real])[None].to(DEVICE)
    mask_right = torch.tensor([[1] * tokens + [0] * pad], device=DEVICE)
    mask_left = mask_right.flip(1)
    resp_right = torch.tensor([[0] * 4 + [1] * (tokens - 4) + [0] * pad], device=DEVICE)
    weight = torch.randn(dim, generator=gen).to(DEVICE)
    a = multiview_pool(right, mask_right, resp_right, attn_weight=weight, backend=backend)
    b = multiview_pool(left, mask_left, resp_right.roll(pad, 1), attn_weight=weight, backend=backend)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_response_gives_zero_views_and_finite_gradients(backend):
    hidden = torch.randn(2, 9, 16, device=DEVICE, requires_grad=True)
    attention = torch.ones(2, 9, dtype=torch.long, device=DEVICE)
    response = torch.zeros(2, 9, dtype=torch.long, device=DEVICE)
    response[1, 5:] = 1
    weight = torch.randn(16, device=DEVICE, requires_grad=True)
    views = multiview_pool(hidden, attention, response, attn_weight=weight, backend=backend)
    assert torch.equal(views[0, :3], torch.zeros(3, 16, device=DEVICE))
    views.backward(torch.randn_like(views))
    assert torch.isfinite(hidden.grad).all() and torch.isfinite(weight.grad).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_saturated_attention_over_outlier_hidden_states_matches_reference(backend):
    """The kit's drawn case (hidden ×100, scores ~10³ apart: a one-hot β but for one token at a − m ≈ −17) on
    which the fp32 Triton backward's d_attn_weight was 6× PyTorch's own error: the rounding of g_t where
    β_t ≈ 1 reached d_attn_weight times |h_t|. Rebuilt from its seed as the kit builds it."""
    gen = torch.Generator().manual_seed(16819)
    hidden = torch.randn(4, 15, 64, generator=gen, dtype=torch.float64) * 100
    weight = torch.randn(64, generator=gen, dtype=torch.float64)
    bias = torch.randn((), generator=gen, dtype=torch.float64)
    grad = torch.randn(4, 4, 64, generator=gen, dtype=torch.float64)
    attention = torch.ones(4, 15, dtype=torch.bool)
    attention[0, :12] = attention[1, 0] = attention[3, 3] = attention[3, 12] = attention[3, 13] = False
    hidden[~attention] = float("inf")  # padding tokens: no view may read them
    inputs = {"hidden": hidden.float().to(DEVICE), "attention_mask": attention.to(DEVICE), "response_mask": None,
              "attn_weight": weight.float().to(DEVICE), "attn_bias": bias.float().to(DEVICE)}
    check_against_reference("multiview_pool", inputs, ["attn_weight", "attn_bias"], [grad.float().to(DEVICE)], backend,
                            torch.float32, [torch.float32])


@pytest.mark.parametrize("backend", BACKENDS)
def test_fp16_gradients_past_the_range_are_the_rounded_infinity(backend):
    """The kit's drawn case (fp16, packed, hidden ×100, D = 40) whose exact d_attn_weight reaches −1.3e5 in
    four elements, past fp16's 65,504: every backend must give −inf there (the correctly rounded value) and
    meet the rule everywhere else. Rebuilt from its seed as the kit builds it."""
    gen = torch.Generator().manual_seed(592)
    hidden = (torch.randn(26, 40, generator=gen, dtype=torch.float64) * 100).half()
    weight = torch.randn(40, generator=gen, dtype=torch.float64).half()
    grad = torch.randn(5, 4, 40, generator=gen, dtype=torch.float64).half()
    cu_seqlens = torch.tensor([0, 4, 4, 14, 26, 26], dtype=torch.int32, device=DEVICE)
    inputs = {"hidden": hidden.to(DEVICE), "attention_mask": torch.ones(26, dtype=torch.long, device=DEVICE),
              "response_mask": None, "attn_weight": weight.to(DEVICE), "attn_bias": None}
    check_against_reference("multiview_pool", inputs, ["hidden", "attn_weight"], [grad.to(DEVICE)], backend,
                            torch.float16, [torch.float16], cu_seqlens=cu_seqlens, max_seqlen=12)
    leaf = weight.to(DEVICE).requires_grad_()
    views = multiview_pool(hidden.to(DEVICE), inputs["attention_mask"], attn_weight=leaf, cu_seqlens=cu_seqlens,
                           max_seqlen=12, backend=backend)
    (d_weight,) = torch.autograd.grad(views, leaf, grad.to(DEVICE))
    assert torch.isinf(d_weight).sum() == 4 and (d_weight[torch.isinf(d_weight)] < 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_fp16_mean_of_large_values_does_not_overflow(backend):
    hidden = torch.full((2, 64, 8), 60000.0, dtype=torch.float16, device=DEVICE)
    attention = torch.ones(2, 64, dtype=torch.long, device=DEVICE)
    views = multiview_pool(hidden, attention, attn_weight=torch.zeros(8, dtype=torch.float16, device=DEVICE), backend=backend)
    assert torch.equal(views[:, :3].float(), torch.full((2, 3, 8), 60000.0, device=DEVICE).half().float())


def test_fused_torch_path_gradcheck_fp64():
    gen = torch.Generator().manual_seed(3)
    hidden = torch.randn(3, 7, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    attention = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])
    response = torch.tensor([[0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 1, 1, 0, 1]])
    weight = torch.randn(5, dtype=torch.float64, generator=gen, requires_grad=True)
    bias = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    fn = lambda h, w, b: multiview_pool(h, attention, response, attn_weight=w, attn_bias=b, backend="torch")
    assert torch.autograd.gradcheck(fn, (hidden, weight, bias))
    (packed, ones, packed_response, cu), _, packed_weight = packed_case([4, 0, 6], 3)
    packed_fn = lambda h, w: multiview_pool(h, ones, packed_response, attn_weight=w, cu_seqlens=cu, backend="torch")
    assert torch.autograd.gradcheck(packed_fn, (packed.double().requires_grad_(), packed_weight.double().requires_grad_()))
