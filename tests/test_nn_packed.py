"""Heads on packed input (docs/packing.md): the same rewards, outputs and gradients as on padded input, for every
head, both padding sides of the padded reference, fp32 and bf16 (the suite's tolerance rule, `adajudge.testing`);
a sequence scores the same whatever it is packed with."""
import copy
import math

import pytest
import torch

from adajudge.nn import build_head
from adajudge.nn.attention import block_diagonal_attention
from adajudge.nn.packed import PackedSequences
from adajudge.testing import assert_close

D = 64
HEADS = [
    ("adajudge", {"num_blocks": 2, "num_heads": 4, "scorer_hidden": 16, "router_hidden": 16}),
    ("last", {}),
    ("mean", {}),
    ("attn", {}),
]
BACKENDS = ("torch", "reference")
LENGTHS = [5, 9, 1, 7, 12, 3]


def random_head(kind, options, backend, seed=0):
    """A head of `kind` whose every parameter is random (zero-initialised parts exercised too)."""
    head = build_head(kind, D, backend=backend, **options)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in head.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator) * 0.3
            parameter.copy_(noise + 1.0 if name.endswith("norm.weight") else noise)
    return head


def sequences(lengths=LENGTHS, seed=1):
    """Hidden states and response masks of sequences of `lengths` (responses: a suffix; one has none)."""
    generator = torch.Generator().manual_seed(seed)
    hidden = [torch.randn(n, D, generator=generator) for n in lengths]
    response = [(torch.arange(n) >= n // 3).long() for n in lengths]
    response[1] = torch.zeros(lengths[1], dtype=torch.long)  # an empty response: zero views, never NaN
    return hidden, response


def padded(hidden, response, side):
    """`[B, T, D]` with masks, right- or left-padded, padding filled with noise (it must not matter)."""
    length = max(h.shape[0] for h in hidden)
    out = torch.randn(len(hidden), length, D) * 10
    attention = torch.zeros(len(hidden), length, dtype=torch.long)
    response_mask = torch.zeros_like(attention)
    for b, (h, r) in enumerate(zip(hidden, response)):
        span = slice(0, h.shape[0]) if side == "right" else slice(length - h.shape[0], length)
        out[b, span], attention[b, span], response_mask[b, span] = h, 1, r
    return out, attention, response_mask


def packed(hidden, response):
    lengths = [h.shape[0] for h in hidden]
    return torch.cat(hidden), torch.cat(response), torch.tensor([0, *lengths]).cumsum(0).to(torch.int32)


def outputs_and_gradients(head, hidden, call, weights):
    """Every output of `head` and the gradients of a random combination of them w.r.t. `hidden` and every
    parameter, as one flat dict."""
    hidden = hidden.detach().requires_grad_()
    out = call(head, hidden)
    fields = {"reward": out.reward, "view_scores": out.view_scores, "router_probs": out.router_probs,
              "router_entropy": out.router_entropy, "representation": out.representation}
    objective = sum((value.double() * weights[name]).sum() for name, value in fields.items())
    params = dict(head.named_parameters())
    grads = torch.autograd.grad(objective, [hidden, *params.values()], allow_unused=True)
    return {**fields, "d_hidden": grads[0], **{f"d_{name}": g for name, g in zip(params, grads[1:])}}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind, options", HEADS, ids=[kind for kind, _ in HEADS])
def test_packed_equals_padded(kind, options, backend, side, dtype):
    head = random_head(kind, options, backend)
    hidden_list, response_list = sequences()
    pad_hidden, attention, pad_response = padded(hidden_list, response_list, side)
    flat_hidden, flat_response, cu_seqlens = packed(hidden_list, response_list)
    real = attention.bool()
    generator = torch.Generator().manual_seed(2)
    reference_out = head(pad_hidden, attention, pad_response)
    weights = {name: torch.randn(getattr(reference_out, name).shape, generator=generator, dtype=torch.float64)
               for name in ("reward", "view_scores", "router_probs", "router_entropy", "representation")}

    def padded_call(module, h):
        return module(h, attention, pad_response)

    def packed_call(module, h):
        return module(h, None, flat_response, cu_seqlens=cu_seqlens, max_seqlen=max(LENGTHS))

    head64 = copy.deepcopy(head).double()
    expected = outputs_and_gradients(head64, pad_hidden.double(), padded_call, weights)
    reference = outputs_and_gradients(copy.deepcopy(head).to(dtype), pad_hidden.to(dtype), padded_call, weights)
    actual = outputs_and_gradients(copy.deepcopy(head).to(dtype), flat_hidden.to(dtype), packed_call, weights)
    for values in (expected, reference):
        values["d_hidden"] = values["d_hidden"][real]  # the real tokens, in the packed order
    for name in expected:
        assert_close(f"{kind}/{name}", actual[name], expected[name], reference[name], dtype=dtype,
                     expected_dtype=reference[name].dtype if reference[name] is not None else None)


@pytest.mark.parametrize("kind, options", HEADS, ids=[kind for kind, _ in HEADS])
def test_a_sequence_s_reward_does_not_depend_on_its_neighbours(kind, options):
    head = random_head(kind, options, "torch", seed=3)
    hidden_list, response_list = sequences(lengths=[6, 11, 4, 9, 2, 8, 13], seed=5)
    target = 2

    def reward_of_target(neighbours, dtype):
        order = [*neighbours[: len(neighbours) // 2], target, *neighbours[len(neighbours) // 2 :]]
        flat_hidden, flat_response, cu_seqlens = packed([hidden_list[i] for i in order], [response_list[i] for i in order])
        module = copy.deepcopy(head).to(dtype)
        with torch.no_grad():
            out = module(flat_hidden.to(dtype), None, flat_response, cu_seqlens=cu_seqlens)
        return out.reward[order.index(target)]

    expected = reward_of_target([], torch.float64)
    reference = reward_of_target([], torch.float32)
    for neighbours in ([0, 1], [6, 5, 4, 3], [1, 3, 5, 0, 6, 4]):
        assert_close(f"{kind} beside {neighbours}", reward_of_target(neighbours, torch.float32), expected, reference,
                     dtype=torch.float32)


def naive_packed_attention(q, k, v, cu_seqlens):
    out = torch.zeros_like(q)
    for start, end in zip(cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist()):
        scores = torch.einsum("qhd,khd->hqk", q[start:end], k[start:end]) / math.sqrt(q.shape[-1])
        out[start:end] = torch.einsum("hqk,khd->qhd", torch.softmax(scores, dim=-1), v[start:end])
    return out


def test_block_diagonal_attention_keeps_each_token_in_its_sequence():
    torch.manual_seed(0)
    lengths = [4, 0, 7, 1, 3, 7, 2]  # an empty sequence, and two of the longest
    cu_seqlens = torch.tensor([0, *lengths]).cumsum(0)
    q, k, v = (torch.randn(sum(lengths), 2, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    layout = PackedSequences(cu_seqlens, sum(lengths)).block_layout
    assert layout.width == 7 and layout.blocks == 4  # [7], [7], [4, 3], [2, 1]: first fit decreasing
    out = block_diagonal_attention(q, k, v, PackedSequences(cu_seqlens, sum(lengths)))
    torch.testing.assert_close(out, naive_packed_attention(q, k, v, cu_seqlens))
    upstream = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), upstream)
    expected = torch.autograd.grad(naive_packed_attention(q, k, v, cu_seqlens), (q, k, v), upstream)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want)


def test_packed_input_is_checked():
    head = build_head("adajudge", D, num_blocks=1)
    hidden = torch.randn(10, D)
    cu_seqlens = torch.tensor([0, 4, 10], dtype=torch.int32)
    with pytest.raises(ValueError, match="attention_mask: expected None with cu_seqlens"):
        head(hidden, torch.ones(10, dtype=torch.long), cu_seqlens=cu_seqlens)
    with pytest.raises(ValueError, match=r"hidden: expected packed shape \[total, 64\]"):
        head(hidden[None], None, cu_seqlens=cu_seqlens)
    with pytest.raises(ValueError, match="cu_seqlens: expected non-decreasing boundaries from 0 to total_T=10"):
        head(hidden, None, cu_seqlens=torch.tensor([0, 4, 9], dtype=torch.int32))
    with pytest.raises(ValueError, match=r"max_seqlen: expected at least the longest packed row \(6\), got 5"):
        head(hidden, None, cu_seqlens=cu_seqlens, max_seqlen=5)
    with pytest.raises(ValueError, match="response_mask: expected shape"):
        build_head("last", D)(hidden, None, torch.ones(9, dtype=torch.long), cu_seqlens=cu_seqlens)
    with pytest.raises(TypeError, match="cu_seqlens: expected dtype"):
        build_head("mean", D)(hidden, None, cu_seqlens=cu_seqlens.float())
