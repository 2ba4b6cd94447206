"""Router mix with its analytic backward (DESIGN.md §4); `[B, V]` tensors, so plain PyTorch is enough.

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
    """Returns `(d_router_logits, d_view_scores)` in fp32/fp64; the caller casts to the input dtypes."""
    probs, log_probs, scores = saved
    d_probs = grad_reward[:, None] * scores + grad_probs - grad_entropy[:, None] * (log_probs + 1)
    d_logits = probs * (d_probs - (probs * d_probs).sum(-1, keepdim=True)) / temperature
    return d_logits, grad_reward[:, None] * probs
