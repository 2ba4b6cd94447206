"""Router mix with its analytic backward (docs/design.md §4): launchers, autograd Function, entry point.
`[B, V]` tensors, so plain PyTorch is enough.

VJP: with upstream gradients `gr` (reward), `gπ` (probs), `gH` (entropy),
    dπ_v = gr·s_v + gπ_v − gH·(log π_v + 1)
    du   = π ⊙ (dπ − <π, dπ>) / τ_r
    ds   = gr·π
"""
import torch


def router_mix_fwd(router_logits, view_scores, temperature):
    """Returns `((reward [B], probs [B, V], entropy [B]), saved)`, all fp32 (fp64 for fp64 input)."""
    compute_dtype = torch.promote_types(torch.promote_types(router_logits.dtype, view_scores.dtype), torch.float32)
    log_probs = torch.log_softmax(router_logits.to(compute_dtype) / temperature, dim=-1)
    probs = log_probs.exp()
    scores = view_scores.to(compute_dtype)
    reward = (probs * scores).sum(-1)
    entropy = -(probs * log_probs).sum(-1)
    return (reward, probs, entropy), (probs, log_probs, scores)


def router_mix_bwd(grad_reward, grad_probs, grad_entropy, temperature, saved):
    """Returns `(d_router_logits, d_view_scores)` in the compute dtype (fp32, or fp64 for fp64 input)."""
    probs, log_probs, scores = saved
    d_probs = grad_reward[:, None] * scores + grad_probs - grad_entropy[:, None] * (log_probs + 1)
    d_logits = probs * (d_probs - (probs * d_probs).sum(-1, keepdim=True)) / temperature
    return d_logits, grad_reward[:, None] * probs


class RouterMixFused(torch.autograd.Function):
    """`router_mix` on the fused PyTorch path; the gradients come back in the inputs' dtypes."""

    @staticmethod
    def forward(ctx, router_logits, view_scores, temperature):
        outputs, saved = router_mix_fwd(router_logits, view_scores, temperature)
        ctx.save_for_backward(*saved)
        ctx.temperature, ctx.dtypes = temperature, (router_logits.dtype, view_scores.dtype)
        return outputs

    @staticmethod
    def backward(ctx, grad_reward, grad_probs, grad_entropy):
        d_logits, d_scores = router_mix_bwd(grad_reward, grad_probs, grad_entropy, ctx.temperature, ctx.saved_tensors)
        logits_dtype, scores_dtype = ctx.dtypes
        return d_logits.to(logits_dtype), d_scores.to(scores_dtype), None


def router_mix_fused(router_logits, view_scores, temperature):
    """`adajudge.ops.router_mix` on the fused PyTorch path, for validated input (fp64 computed in fp64)."""
    return RouterMixFused.apply(router_logits, view_scores, temperature)
