"""Under autocast (mixed-precision training, e.g. TRL's default bf16 on a CPU) the fused ops give what they give
without it: they pick their own compute dtype, so autocast must not turn their matmuls into bf16."""
import pytest
import torch

from adajudge import ops


def pool_inputs(packed: bool):
    generator = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 12, 32, generator=generator, requires_grad=True)
    attention_mask = torch.ones(3, 12, dtype=torch.long)
    attention_mask[1, 9:] = 0
    response_mask = (torch.arange(12) >= 5).long().expand(3, 12) * attention_mask
    weight = torch.randn(32, generator=generator, requires_grad=True)
    if not packed:
        return (hidden, attention_mask, response_mask), {"attn_weight": weight}
    lengths = attention_mask.sum(1)
    cu_seqlens = torch.cat([torch.zeros(1, dtype=torch.int32), lengths.cumsum(0).int()])
    flat = hidden.detach()[attention_mask.bool()].requires_grad_()
    return (flat, torch.ones(len(flat), dtype=torch.long), response_mask[attention_mask.bool()]), {
        "attn_weight": weight, "cu_seqlens": cu_seqlens, "max_seqlen": int(lengths.max())}


def run(fn, args, kwargs):
    out = fn(*args, **kwargs)
    out = out if isinstance(out, tuple) else (out,)
    leaves = [t for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor) and t.requires_grad]
    grads = torch.autograd.grad(sum(o.float().sum() for o in out if o.requires_grad), leaves)
    return [o.detach() for o in out], list(grads)


@pytest.mark.parametrize("op", ["multiview_pool", "multiview_pool_packed", "router_mix", "preference_loss"])
def test_fused_ops_ignore_an_enclosing_autocast(op):
    if op.startswith("multiview_pool"):
        args, kwargs = pool_inputs(packed=op.endswith("packed"))
        fn = ops.multiview_pool
    elif op == "router_mix":
        args, kwargs = (torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)), {}
        fn = ops.router_mix
    else:
        args = (torch.randn(5, requires_grad=True), torch.randn(5, requires_grad=True))
        kwargs = {"gamma": 2.0, "chosen_repr": torch.randn(5, 8), "rejected_repr": torch.randn(5, 8)}
        fn = ops.preference_loss
    kwargs["backend"] = "torch"
    expected = run(fn, args, kwargs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = run(fn, args, kwargs)
    for want, have in zip(expected[0] + expected[1], got[0] + got[1]):
        assert have.dtype == want.dtype and torch.equal(have, want)
