"""Refinement blocks, the masked attention inside them and the depth gate (docs/design.md §5 steps 1–2)."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from adajudge.nn import attention
from adajudge.nn.attention import padded_attention, sdpa_attention, varlen_attention
from adajudge.nn.refinement import Refinement, RefinementBlock, default_num_heads
from adajudge.testing import assert_close

D = 64


def masks(batch=4, length=9):
    """`[B, T]` long masks: right-padded, left-padded, a hole in the middle, one real token."""
    mask = torch.zeros(batch, length, dtype=torch.long)
    mask[0, :6] = 1
    mask[1, 3:] = 1
    mask[2, [0, 1, 4, 7, 8]] = 1
    mask[3, 5] = 1
    return mask


def randomize(module, seed=0, std=0.2):
    """Give every parameter random values (untrained heads have zero output projections); norm weights
    stay near 1."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * std
            parameter.copy_(noise + 1.0 if name.endswith("norm.weight") else noise)
    return module


def as64(value):
    """A float64 copy of a module or floating tensor (anything else as is)."""
    if isinstance(value, torch.nn.Module):
        return copy.deepcopy(value).double()
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().double()
    return value


def check(name, actual, compute, *args):
    """The suite's tolerance rule (`adajudge.testing`): fp32 `actual` against `compute(*args)` in float64,
    with `compute(*args)` in fp32 as the same-precision reference."""
    assert_close(name, actual, compute(*map(as64, args)), compute(*args), dtype=torch.float32, expected_dtype=torch.float32)


def naive_attention(q, k, v, mask):
    """Per row, per head: softmax over the real keys, written out; padded query rows are zero."""
    out = torch.zeros_like(q)
    for b in range(q.shape[0]):
        real = mask[b].bool()
        if not real.any():
            continue
        for h in range(q.shape[2]):
            scores = q[b, :, h] @ k[b, real, h].T / math.sqrt(q.shape[-1])  # [T, n]
            out[b, :, h] = torch.softmax(scores, dim=-1) @ v[b, real, h]
        out[b, ~real] = 0
    return out


def cpu_varlen(q, k, v, *, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal):
    """flash_attn_varlen_func's contract on packed `[total, H, Dh]` tensors, in plain PyTorch."""
    assert not causal and torch.equal(cu_seqlens_q, cu_seqlens_k)
    assert cu_seqlens_q.dtype == torch.int32 and max_seqlen_q == int((cu_seqlens_q[1:] - cu_seqlens_q[:-1]).max())
    out = torch.empty_like(q)
    for start, end in zip(cu_seqlens_q[:-1].tolist(), cu_seqlens_q[1:].tolist()):
        scores = torch.einsum("qhd,khd->hqk", q[start:end], k[start:end]) / math.sqrt(q.shape[-1])
        out[start:end] = torch.einsum("hqk,khd->qhd", torch.softmax(scores, dim=-1), v[start:end])
    return out


@pytest.mark.parametrize(("hidden_size", "heads"), [(64, 1), (576, 9), (4096, 64), (128, 2), (48, 1), (96, 2), (7, 1)])
def test_default_num_heads_gives_head_size_closest_to_64(hidden_size, heads):
    assert default_num_heads(hidden_size) == heads


def test_sdpa_attention_matches_naive_masked_attention():
    torch.manual_seed(0)
    mask = masks()
    q, k, v = (torch.randn(4, 9, 2, 16) for _ in range(3))
    out = sdpa_attention(q, k, v, mask)
    check("attention", out, naive_attention, q, k, v, mask)
    assert torch.equal(out[mask == 0], torch.zeros_like(out[mask == 0]))


def test_varlen_path_packs_real_tokens_and_matches_sdpa():
    torch.manual_seed(1)
    mask = masks()
    mask[2] = 0  # a row with no real token: zero-length sequence in cu_seqlens
    q, k, v = (torch.randn(4, 9, 2, 16) for _ in range(3))
    out = varlen_attention(cpu_varlen, q, k, v, mask)
    check("attention", out, naive_attention, q, k, v, mask)
    assert torch.equal(out[2], torch.zeros_like(out[2]))


def test_row_without_real_tokens_gives_zeros_and_finite_gradients():
    mask = masks()
    mask[1] = 0
    q, k, v = (torch.randn(4, 9, 2, 16, requires_grad=True) for _ in range(3))
    out = sdpa_attention(q, k, v, mask)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    out.square().sum().backward()
    for tensor in (q, k, v):
        assert torch.isfinite(tensor.grad).all()
        assert torch.equal(tensor.grad[1], torch.zeros_like(tensor.grad[1]))


def test_padded_attention_uses_sdpa_off_cuda_even_when_flash_attn_is_importable(monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("flash-attn called for CPU tensors")

    monkeypatch.setattr(attention, "flash_attn_varlen", lambda: must_not_run)
    mask = masks()
    q, k, v = (torch.randn(4, 9, 2, 16, dtype=torch.bfloat16) for _ in range(3))
    assert torch.equal(padded_attention(q, k, v, mask), sdpa_attention(q, k, v, mask))


def naive_block(block, x, mask):
    """`RefinementBlock` written out: RMSNorm, attention per head over real tokens, SwiGLU, residuals."""

    def rms(t, weight):
        return t * torch.rsqrt(t.pow(2).mean(-1, keepdim=True) + 1e-6) * weight

    batch, length, width = x.shape
    heads = block.num_heads
    q, k, v = (rms(x, block.attn_norm.weight) @ block.qkv_proj.weight.T).split(width, dim=-1)
    split = [t.reshape(batch, length, heads, width // heads) for t in (q, k, v)]
    x = x + naive_attention(*split, mask).reshape(batch, length, width) @ block.out_proj.weight.T
    gate, up = (rms(x, block.mlp_norm.weight) @ block.gate_up_proj.weight.T).chunk(2, dim=-1)
    return x + (F.silu(gate) * up) @ block.down_proj.weight.T


def test_block_matches_naive_formula_at_real_tokens_with_gradients():
    torch.manual_seed(2)
    block = randomize(RefinementBlock(D, num_heads=4, intermediate_size=96))
    x, mask = torch.randn(4, 9, D, requires_grad=True), masks()
    real = mask.bool()
    upstream = torch.randn(int(real.sum()), D)

    def naive(module, x, mask):
        x = x.detach().requires_grad_()
        out = naive_block(module, x, mask)[real]
        return torch.cat([out.flatten(), torch.autograd.grad(out, x, upstream.to(out.dtype))[0].flatten()])

    out = block(x, mask)[real]
    actual = torch.cat([out.flatten(), torch.autograd.grad(out, x, upstream)[0].flatten()])
    check("block output and d hidden", actual, naive, block, x, mask)


@pytest.mark.parametrize("num_blocks", [1, 3])
def test_untrained_refinement_passes_hidden_through_unchanged(num_blocks):
    refinement = Refinement(D, num_blocks, num_heads=2, intermediate_size=128)
    hidden, mask = torch.randn(4, 9, D), masks()
    assert torch.equal(refinement(hidden, mask), hidden)
    torch.testing.assert_close(refinement.depth_weights(hidden, mask), torch.full((4, num_blocks), 1 / num_blocks))


def naive_refinement(refinement, hidden, mask):
    """docs/design.md §5: `α = softmax(W_d c + b_d)` with `c` the mean over real tokens, `H̃ = Σ_k α_k H^(k)`."""
    context = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    alpha = torch.softmax(context @ refinement.depth_gate.weight.T + refinement.depth_gate.bias, dim=-1)
    states, state = [], hidden
    for block in refinement.blocks:
        state = naive_block(block, state, mask)
        states.append(state)
    return sum(alpha[:, k, None, None] * states[k] for k in range(len(states)))[mask.bool()]


def test_refinement_matches_depth_gate_formula():
    torch.manual_seed(3)
    refinement = randomize(Refinement(D, 3, num_heads=2, intermediate_size=96))
    hidden, mask = torch.randn(4, 9, D), masks()
    check("refined", refinement(hidden, mask)[mask.bool()], naive_refinement, refinement, hidden, mask)


def test_refinement_ignores_padding_content_and_side():
    torch.manual_seed(4)
    refinement = randomize(Refinement(D, 2, num_heads=4, intermediate_size=64))
    tokens = torch.randn(5, D)
    right = torch.cat([tokens, torch.randn(3, D)])[None]
    left = torch.cat([torch.randn(3, D) * 100, tokens])[None]
    right_mask = torch.tensor([[1] * 5 + [0] * 3])
    left_mask = right_mask.flip(1)
    check("left-padded", refinement(left, left_mask)[0, 3:], lambda m, h, mask: m(h, mask)[0, :5], refinement, right, right_mask)


def test_gradients_reach_every_refinement_parameter():
    refinement = randomize(Refinement(D, 2, num_heads=2, intermediate_size=64))
    hidden = torch.randn(4, 9, D, requires_grad=True)
    refinement(hidden, masks()).square().sum().backward()
    for name, parameter in refinement.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    assert torch.isfinite(hidden.grad).all()


def test_bad_refinement_options_raise():
    with pytest.raises(ValueError, match="num_heads"):
        RefinementBlock(D, num_heads=5, intermediate_size=64)
    with pytest.raises(ValueError, match="num_blocks"):
        Refinement(D, -1, num_heads=2, intermediate_size=64)
    with pytest.raises(TypeError, match="intermediate_size"):
        RefinementBlock(D, num_heads=2, intermediate_size=64.0)
