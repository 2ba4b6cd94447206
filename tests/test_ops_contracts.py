"""Contracts every backend of every op keeps: strided inputs, empty batches, fp64 computed in fp64, the
packed pooling under torch.compile(fullgraph=True), and no tensor value read on the host."""
import pytest
import torch
from op_cases import BACKENDS, DEVICE, check_against_reference
from torch.utils._python_dispatch import TorchDispatchMode

from adajudge import ops
from adajudge.testing import run_with_grads

ALL_BACKENDS = ["auto", *BACKENDS, "reference"]


def _pooling_inputs(batch=3, length=11, dim=24, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    attention = torch.ones(batch, length, dtype=torch.long)
    attention[:, : length // 3] = 0
    response = attention.clone()
    response[:, : length // 2] = 0
    return {
        "hidden": torch.randn(batch, length, dim, generator=gen).to(dtype).to(DEVICE),
        "attention_mask": attention.to(DEVICE),
        "response_mask": response.to(DEVICE),
        "attn_weight": torch.randn(dim, generator=gen).to(dtype).to(DEVICE),
        "attn_bias": torch.randn((), generator=gen).to(dtype).to(DEVICE),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_strided_attention_weight_matches_reference(backend):
    inputs = _pooling_inputs()
    weight = torch.randn(inputs["attn_weight"].shape[0], 2, device=DEVICE)[:, 0]  # stride 2
    assert weight.stride(0) == 2
    inputs["attn_weight"] = weight
    grad = torch.randn(3, 4, 24, device=DEVICE)
    check_against_reference(
        "multiview_pool", inputs, ["hidden", "attn_weight", "attn_bias"], [grad], backend, torch.float32, [torch.float32]
    )


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_empty_batch_gives_empty_views_and_gradients(backend):
    inputs = {k: (v[:0] if k in ("hidden", "attention_mask", "response_mask") else v) for k, v in _pooling_inputs().items()}
    outputs, grads = run_with_grads(
        lambda **kw: ops.multiview_pool(**kw, backend=backend), inputs, ["hidden", "attn_weight", "attn_bias"],
        [torch.empty(0, 4, 24, device=DEVICE)],
    )
    assert outputs[0].shape == (0, 4, 24)
    assert grads[0].shape == (0, 11, 24)
    for grad in grads[1:]:  # no row, no contribution
        assert grad is not None and torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_empty_router_batch_gives_empty_outputs(backend):
    logits = torch.empty(0, 3, device=DEVICE, requires_grad=True)
    reward, probs, entropy = ops.router_mix(logits, torch.empty(0, 3, device=DEVICE), backend=backend)
    assert reward.shape == (0,) and probs.shape == (0, 3) and entropy.shape == (0,)
    (reward.sum() + entropy.sum()).backward()
    assert logits.grad.shape == (0, 3)


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_fp64_is_computed_in_fp64_on_every_backend(backend):
    if backend in ("reference", "auto"):  # auto is the fused path here; the reference is the oracle itself
        backend = "torch" if backend == "auto" else backend
    inputs = _pooling_inputs(dtype=torch.float64)
    grad = torch.randn(3, 4, 24, dtype=torch.float64, device=DEVICE)
    check_against_reference(
        "multiview_pool", inputs, ["hidden", "attn_weight", "attn_bias"], [grad], backend, torch.float64, [torch.float64]
    )
    gen = torch.Generator().manual_seed(1)
    logits, scores = (torch.randn(5, 3, generator=gen, dtype=torch.float64).to(DEVICE) for _ in range(2))
    check_against_reference(
        "router_mix", {"router_logits": logits, "view_scores": scores}, ["router_logits", "view_scores"],
        [torch.randn(5, dtype=torch.float64, device=DEVICE), torch.randn(5, 3, dtype=torch.float64, device=DEVICE),
         torch.randn(5, dtype=torch.float64, device=DEVICE)],
        backend, torch.float64, [torch.float64] * 3,
    )
    pairs = {"chosen": torch.randn(6, dtype=torch.float64, device=DEVICE),
             "rejected": torch.randn(6, dtype=torch.float64, device=DEVICE),
             "chosen_repr": torch.randn(6, 5, dtype=torch.float64, device=DEVICE),
             "rejected_repr": torch.randn(6, 5, dtype=torch.float64, device=DEVICE)}
    check_against_reference(
        "preference_loss", pairs, ["chosen", "rejected"], [torch.tensor(1.0, dtype=torch.float64, device=DEVICE)],
        backend, torch.float64, [torch.float64], gamma=2.0,
    )


def _packed(lengths, dim, seed=0):
    gen = torch.Generator().manual_seed(seed)
    total = sum(lengths)
    return (
        torch.randn(total, dim, generator=gen).to(DEVICE),
        torch.ones(total, dtype=torch.long, device=DEVICE),
        (torch.rand(total, generator=gen) > 0.4).long().to(DEVICE),
        torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32, device=DEVICE),
        torch.randn(dim, generator=gen).to(DEVICE),
    )


@pytest.mark.parametrize("backend", ["torch"] if DEVICE.type == "cpu" else ["torch", "triton"])
def test_packed_pooling_with_max_seqlen_compiles_fullgraph_and_matches_reference(backend):
    hidden, attention, response, cu_seqlens, weight = _packed([5, 0, 9, 3], 16)

    def pooled(h, w):
        return ops.multiview_pool(h, attention, response, attn_weight=w, cu_seqlens=cu_seqlens, max_seqlen=9, backend=backend)

    compiled = torch.compile(pooled, fullgraph=True)
    results = []
    for fn in (compiled, lambda h, w: ops.multiview_pool(h, attention, response, attn_weight=w, cu_seqlens=cu_seqlens,
                                                         backend="reference")):
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        views = fn(h, w)
        results.append([views, *torch.autograd.grad(views, (h, w), torch.ones_like(views))])
    for compiled_value, reference_value in zip(*results):
        torch.testing.assert_close(compiled_value, reference_value, rtol=1e-5, atol=1e-5)


class HostReads(TorchDispatchMode):
    """Counts the ops that read a tensor value on the host (`.item()`, `int(t)`, `bool(t)`, ...)."""

    def __init__(self):
        super().__init__()
        self.reads = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.reads.append(func)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_op_reads_tensor_values_on_the_host(backend, monkeypatch):
    """With the value checks off (as under torch.compile or graph capture), forward and backward of every
    op read nothing on the host: padded pooling, packed pooling given max_seqlen, router mix, and the loss
    with NormBT's μ as a tensor, a float and the batch mean."""
    monkeypatch.setenv("ADAJUDGE_CHECK_VALUES", "0")
    inputs = {k: v.requires_grad_() if v.is_floating_point() else v for k, v in _pooling_inputs().items()}
    hidden, attention, response, cu_seqlens, weight = _packed([5, 0, 9], 16)
    hidden.requires_grad_()
    logits = torch.randn(4, 3, device=DEVICE, requires_grad=True)
    chosen, rejected = (torch.randn(4, device=DEVICE, requires_grad=True) for _ in range(2))
    reprs = torch.randn(2, 4, 8, device=DEVICE)
    with HostReads() as mode:
        ops.multiview_pool(**inputs, backend=backend).sum().backward()
        ops.multiview_pool(hidden, attention, response, attn_weight=weight, cu_seqlens=cu_seqlens, max_seqlen=9,
                           backend=backend).sum().backward()
        sum(out.sum() for out in ops.router_mix(logits, logits * 2, backend=backend)).backward()
        for norm_scale in (torch.tensor(1.3, device=DEVICE), 1.3, None):
            ops.preference_loss(chosen, rejected, gamma=2.0, chosen_repr=reprs[0], rejected_repr=reprs[1],
                                norm_scale=norm_scale, backend=backend).backward()
    assert mode.reads == []


def test_host_read_counter_sees_an_item_call():
    """The control for the test above."""
    with HostReads() as mode:
        torch.ones(2, device=DEVICE).sum().item()
    assert len(mode.reads) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_frozen_hidden_gets_no_gradient_and_the_same_weight_gradients(backend):
    """A frozen backbone's states (no grad) skip the [B, T, D] gradient; the weights' gradients are unchanged."""
    inputs = _pooling_inputs()
    grad = torch.randn(3, 4, 24, device=DEVICE)
    weights = ["attn_weight", "attn_bias"]
    _, with_hidden = run_with_grads(lambda **kw: ops.multiview_pool(**kw, backend=backend), inputs, ["hidden", *weights], [grad])
    _, frozen = run_with_grads(lambda **kw: ops.multiview_pool(**kw, backend=backend), inputs, weights, [grad])
    for a, b in zip(with_hidden[1:], frozen):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_strided_cu_seqlens_match_contiguous_ones(backend):
    hidden, attention, response, cu_seqlens, weight = _packed([4, 0, 7, 3], 16)
    strided = torch.stack([cu_seqlens, torch.full_like(cu_seqlens, 10**6)], dim=1)[:, 0]  # stride 2
    assert strided.stride(0) == 2
    grad = torch.randn(4, 4, 16, device=DEVICE)
    results = []
    for cu in (cu_seqlens, strided):
        outputs, grads = run_with_grads(
            lambda **kw: ops.multiview_pool(**kw, cu_seqlens=cu, max_seqlen=7, backend=backend),
            {"hidden": hidden, "attention_mask": attention, "response_mask": response, "attn_weight": weight},
            ["hidden", "attn_weight"], [grad],
        )
        results.append([*outputs, *grads])
    for contiguous, strided_result in zip(*results):
        torch.testing.assert_close(strided_result, contiguous, rtol=0, atol=0)
